#include "runtime/sandboxers/wasm/wasm_container_spec.h"

#include <sys/resource.h>

#include <map>

#include "absl/strings/str_format.h"

namespace kuasar {
namespace {

absl::Status Bad(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrFormat("wasm container spec: %s", what));
}

// RLIMIT_AS is left alone: Wasmtime reserves address space (guard regions) far beyond the
// memory a module uses, so an address-space cap would stop it, not the module.
const std::map<std::string, int, std::less<>>& RlimitNames() {
  static const auto* names = new std::map<std::string, int, std::less<>>{
      {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_CPU", RLIMIT_CPU},
      {"RLIMIT_DATA", RLIMIT_DATA},         {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},       {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_NOFILE", RLIMIT_NOFILE},     {"RLIMIT_NPROC", RLIMIT_NPROC},
      {"RLIMIT_RSS", RLIMIT_RSS},           {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
      {"RLIMIT_RTTIME", RLIMIT_RTTIME},     {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_STACK", RLIMIT_STACK}};
  return *names;
}

bool IsBind(const nlohmann::json& m) {
  if (m.value("type", "") == "bind") return true;
  for (const auto& o : m.value("options", nlohmann::json::array())) {
    if (o.is_string() && (o == "bind" || o == "rbind")) return true;
  }
  return false;
}

bool HasOption(const nlohmann::json& m, std::string_view opt) {
  for (const auto& o : m.value("options", nlohmann::json::array())) {
    if (o.is_string() && o.get<std::string>() == opt) return true;
  }
  return false;
}

template <typename T>
absl::Status GetInt(const nlohmann::json& obj, const char* key, const char* field, T* out) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return absl::OkStatus();
  if (!obj[key].is_number_integer()) return Bad(absl::StrFormat("%s must be an integer", field));
  *out = obj[key].get<T>();
  return absl::OkStatus();
}

}  // namespace

std::string WasmContainerSpec::ModulePath() const {
  if (args.empty()) return "";
  if (!args[0].empty() && args[0][0] == '/') return args[0];
  return (cwd.ends_with('/') ? cwd : cwd + "/") + args[0];
}

absl::StatusOr<WasmContainerSpec> ParseWasmContainerSpec(const OciSpec& oci,
                                                         const std::string& bundle) {
  const nlohmann::json& doc = oci.doc();
  WasmContainerSpec s;
  try {
    if (!doc.contains("process")) return Bad("process is missing");
    const auto& p = doc["process"];
    s.args = p.at("args").get<std::vector<std::string>>();
    if (s.args.empty() || s.args[0].empty()) return Bad("process.args[0] must name the module");
    s.env = p.value("env", std::vector<std::string>{});
    s.cwd = p.value("cwd", "/");
    if (p.value("terminal", false)) {
      return absl::UnimplementedError("wasm containers have no terminal (process.terminal)");
    }
    if (p.contains("user")) {
      const auto& u = p["user"];
      s.uid = u.value("uid", 0u);
      s.gid = u.value("gid", 0u);
      s.additional_gids = u.value("additionalGids", std::vector<gid_t>{});
    }
    s.no_new_privileges = p.value("noNewPrivileges", false);
    if (p.contains("capabilities") && p["capabilities"].is_object()) {
      const auto& c = p["capabilities"];
      auto names = [&](const char* key) { return c.value(key, std::vector<std::string>{}); };
      s.capabilities = CapabilitySets{names("bounding"), names("effective"), names("permitted"),
                                      names("inheritable")};
    }
    for (const auto& r : p.value("rlimits", nlohmann::json::array())) {
      std::string type = r.at("type").get<std::string>();
      auto it = RlimitNames().find(type);
      if (it == RlimitNames().end()) continue;  // RLIMIT_AS and unknown names: see above
      Rlimit rl{it->second, r.at("soft").get<uint64_t>(), r.at("hard").get<uint64_t>()};
      if (rl.resource == RLIMIT_CPU) {
        s.cpu_time_limit_s = static_cast<int64_t>(std::min<uint64_t>(rl.soft, INT32_MAX));
      } else {
        s.rlimits.push_back(rl);
      }
    }

    if (!doc.contains("root")) return Bad("root is missing");
    std::string root = doc["root"].at("path").get<std::string>();
    s.rootfs = root.starts_with('/') ? root : bundle + "/" + root;
    s.rootfs_readonly = doc["root"].value("readonly", false);

    for (const auto& m : doc.value("mounts", nlohmann::json::array())) {
      if (!IsBind(m)) continue;
      std::string dst = m.at("destination").get<std::string>();
      std::string src = m.value("source", "");
      if (dst.empty() || dst[0] != '/' || src.empty() || src[0] != '/') continue;
      s.binds.push_back({src, dst, HasOption(m, "ro")});
    }

    if (doc.contains("linux")) {
      const auto& l = doc["linux"];
      s.cgroups_path = l.value("cgroupsPath", "");
      for (const auto& ns : l.value("namespaces", nlohmann::json::array())) {
        std::string type = ns.at("type").get<std::string>();
        std::string path = ns.value("path", "");
        // Only the pod's shared namespaces matter to a module; pid/mount/user/cgroup are
        // not joined (WASI has no processes, and preopens are host paths).
        if (path.empty() || (type != "network" && type != "ipc" && type != "uts")) continue;
        s.namespaces.push_back({type, path});
      }
      const auto& res = l.value("resources", nlohmann::json::object());
      if (res.contains("memory")) {
        int64_t limit = 0;
        auto st = GetInt(res["memory"], "limit", "linux.resources.memory.limit", &limit);
        if (!st.ok()) return st;
        s.memory_limit = limit > 0 ? limit : 0;
      }
      if (res.contains("cpu")) {
        int64_t quota = 0, period = 0;
        auto st = GetInt(res["cpu"], "quota", "linux.resources.cpu.quota", &quota);
        if (st.ok()) st = GetInt(res["cpu"], "period", "linux.resources.cpu.period", &period);
        if (!st.ok()) return st;
        if (quota > 0) {
          s.cpu_quota_us = quota;
          s.cpu_period_us = period > 0 ? period : 100000;
        }
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return Bad(e.what());
  }
  if (s.cwd.empty() || s.cwd[0] != '/') return Bad("process.cwd must be absolute");
  return s;
}

}  // namespace kuasar
