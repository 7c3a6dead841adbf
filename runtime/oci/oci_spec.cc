#include "runtime/oci/oci_spec.h"

#include "absl/strings/str_format.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/status_macros.h"

namespace kuasar {
namespace {

constexpr size_t kMaxSpecBytes = 4 << 20;

absl::Status Bad(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrFormat("invalid OCI spec: %s", what));
}

absl::Status CheckProcess(const nlohmann::json& p) {
  if (!p.is_object()) return Bad("process must be an object");
  if (p.contains("terminal") && !p["terminal"].is_boolean()) {
    return Bad("process.terminal must be a boolean");
  }
  if (!p.contains("args") || !p["args"].is_array() || p["args"].empty()) {
    return Bad("process.args must be a non-empty array");
  }
  for (const auto& a : p["args"]) {
    if (!a.is_string()) return Bad("process.args must hold strings");
  }
  if (p.contains("cwd")) {
    if (!p["cwd"].is_string() || p["cwd"].get<std::string>().empty() ||
        p["cwd"].get<std::string>()[0] != '/') {
      return Bad("process.cwd must be an absolute path");
    }
  }
  if (p.contains("env") && !p["env"].is_array()) return Bad("process.env must be an array");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<OciSpec> OciSpec::Parse(std::string_view json) {
  if (json.size() > kMaxSpecBytes) return Bad("larger than 4 MiB");
  nlohmann::json doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Bad("not valid JSON");
  if (!doc.is_object()) return Bad("top level must be an object");
  if (!doc.contains("ociVersion") || !doc["ociVersion"].is_string()) {
    return Bad("ociVersion must be a string");
  }
  if (doc.contains("process")) RETURN_IF_ERROR(CheckProcess(doc["process"]));
  if (doc.contains("root")) {
    const auto& r = doc["root"];
    if (!r.is_object() || !r.contains("path") || !r["path"].is_string()) {
      return Bad("root.path must be a string");
    }
  }
  if (doc.contains("mounts")) {
    if (!doc["mounts"].is_array()) return Bad("mounts must be an array");
    for (const auto& m : doc["mounts"]) {
      if (!m.is_object() || !m.contains("destination") || !m["destination"].is_string()) {
        return Bad("every mount needs a string destination");
      }
    }
  }
  if (doc.contains("annotations") && !doc["annotations"].is_object()) {
    return Bad("annotations must be an object");
  }
  if (doc.contains("linux")) {
    const auto& l = doc["linux"];
    if (!l.is_object()) return Bad("linux must be an object");
    if (l.contains("cgroupsPath") && !l["cgroupsPath"].is_string()) {
      return Bad("linux.cgroupsPath must be a string");
    }
  }
  return OciSpec(std::move(doc));
}

absl::StatusOr<OciSpec> OciSpec::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, kMaxSpecBytes));
  absl::StatusOr<OciSpec> spec = Parse(text);
  if (!spec.ok()) return Annotate(spec.status(), path);
  return spec;
}

absl::Status OciSpec::Save(const std::string& path) const {
  return WriteFileAtomically(path, doc_.dump(), 0600);
}

bool OciSpec::terminal() const {
  if (!doc_.contains("process")) return false;
  return doc_["process"].value("terminal", false);
}

std::string OciSpec::cgroups_path() const {
  if (!doc_.contains("linux")) return "";
  return doc_["linux"].value("cgroupsPath", "");
}

std::string OciSpec::annotation(std::string_view key) const {
  if (!doc_.contains("annotations")) return "";
  auto it = doc_["annotations"].find(std::string(key));
  if (it == doc_["annotations"].end() || !it->is_string()) return "";
  return it->get<std::string>();
}

bool OciSpec::HasMountAt(std::string_view destination) const {
  if (!doc_.contains("mounts")) return false;
  for (const auto& m : doc_["mounts"]) {
    if (m["destination"].get<std::string>() == destination) return true;
  }
  return false;
}

int OciSpec::DropJoinedNamespaces() {
  if (!doc_.contains("linux") || !doc_["linux"].contains("namespaces")) return 0;
  auto& ns = doc_["linux"]["namespaces"];
  if (!ns.is_array()) return 0;
  nlohmann::json kept = nlohmann::json::array();
  int dropped = 0;
  for (const auto& n : ns) {
    if (n.is_object() && n.contains("path") && n["path"].is_string() &&
        !n["path"].get<std::string>().empty()) {
      ++dropped;
    } else {
      kept.push_back(n);
    }
  }
  ns = kept;
  return dropped;
}

bool OciSpec::JoinsNamespace(std::string_view type) const {
  if (!doc_.contains("linux") || !doc_["linux"].contains("namespaces")) return false;
  const auto& ns = doc_["linux"]["namespaces"];
  if (!ns.is_array()) return false;
  for (const auto& n : ns) {
    if (n.is_object() && n.value("type", "") == type && n.contains("path") &&
        n["path"].is_string() && !n["path"].get<std::string>().empty()) {
      return true;
    }
  }
  return false;
}

std::map<std::string, std::string> OciSpec::TakeSysctls(std::string_view prefix) {
  std::map<std::string, std::string> taken;
  if (!doc_.contains("linux") || !doc_["linux"].is_object()) return taken;
  auto& linux = doc_["linux"];
  if (!linux.contains("sysctl") || !linux["sysctl"].is_object()) return taken;
  auto& sysctl = linux["sysctl"];
  for (auto it = sysctl.begin(); it != sysctl.end();) {
    if (it.key().starts_with(prefix) && it.value().is_string()) {
      taken[it.key()] = it.value().get<std::string>();
      it = sysctl.erase(it);
    } else {
      ++it;
    }
  }
  return taken;
}

void OciSpec::AddBindMount(const std::string& source, const std::string& destination,
                           bool read_only) {
  if (HasMountAt(destination)) return;
  nlohmann::json options = nlohmann::json::array({"rbind", "rprivate"});
  if (read_only) options.push_back("ro");
  doc_["mounts"].push_back(
      {{"destination", destination}, {"type", "bind"}, {"source", source}, {"options", options}});
}

absl::Status ValidateProcessJson(std::string_view json, bool* terminal) {
  if (json.size() > kMaxSpecBytes) return Bad("process larger than 4 MiB");
  nlohmann::json p = nlohmann::json::parse(json, nullptr, false);
  if (p.is_discarded()) return Bad("process is not valid JSON");
  RETURN_IF_ERROR(CheckProcess(p));
  *terminal = p.value("terminal", false);
  return absl::OkStatus();
}

}  // namespace kuasar
