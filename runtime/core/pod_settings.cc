#include "runtime/core/pod_settings.h"

#include "absl/strings/str_format.h"
#include "cri/v1/api.pb.h"
#include "runtime/base/status_macros.h"

namespace kuasar {

nlohmann::json PodSettings::ToJson() const {
  return {{"name", name},
          {"hostname", hostname},
          {"host_network", host_network},
          {"host_ipc", host_ipc},
          {"host_pid", host_pid},
          {"shared_pid", shared_pid},
          {"cgroup_parent", cgroup_parent},
          {"dns_servers", dns_servers},
          {"dns_searches", dns_searches},
          {"dns_options", dns_options},
          {"sysctls", sysctls}};
}

PodSettings PodSettings::FromJson(const nlohmann::json& j) {
  PodSettings s;
  s.name = j.value("name", "");
  s.hostname = j.value("hostname", "");
  s.host_network = j.value("host_network", false);
  s.host_ipc = j.value("host_ipc", false);
  s.host_pid = j.value("host_pid", false);
  s.shared_pid = j.value("shared_pid", false);
  s.cgroup_parent = j.value("cgroup_parent", "");
  s.dns_servers = j.value("dns_servers", std::vector<std::string>{});
  s.dns_searches = j.value("dns_searches", std::vector<std::string>{});
  s.dns_options = j.value("dns_options", std::vector<std::string>{});
  s.sysctls = j.value("sysctls", std::map<std::string, std::string>{});
  return s;
}

absl::Status ValidatePodSysctl(const std::string& key, const std::string& value,
                               const PodSettings& s) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrFormat("pod sysctl %s: %s", key, why));
  };
  if (key.empty() || key.size() > 128 || key.front() == '.' || key.back() == '.' ||
      key.find("..") != std::string::npos) {
    return bad("malformed name");
  }
  for (char c : key) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.')) {
      return bad("malformed name");
    }
  }
  if (value.size() > 256 || value.find('\n') != std::string::npos) return bad("malformed value");
  // Only namespaced sysctls (as runc allows): they change the pod, never the node.
  bool ipc = key.starts_with("kernel.shm") || key.starts_with("kernel.msg") ||
             key == "kernel.sem" || key.starts_with("fs.mqueue.");
  bool net = key.starts_with("net.");
  if (!ipc && !net) return bad("not a namespaced sysctl");
  if (ipc && s.host_ipc) return bad("the pod uses the host IPC namespace");
  if (net && s.host_network) return bad("the pod uses the host network namespace");
  return absl::OkStatus();
}

absl::StatusOr<PodSettings> DecodePodSettings(const std::string& type_url,
                                              const std::string& bytes) {
  PodSettings s;
  if (type_url.empty()) return s;
  std::string_view name = type_url;
  if (size_t slash = name.rfind('/'); slash != std::string_view::npos) name.remove_prefix(slash + 1);
  if (name != "runtime.v1.PodSandboxConfig") {
    return absl::InvalidArgumentError(
        absl::StrFormat("sandbox options of type \"%s\" are not a runtime.v1.PodSandboxConfig",
                        type_url));
  }
  runtime::v1::PodSandboxConfig cfg;
  if (!cfg.ParseFromString(bytes)) {
    return absl::InvalidArgumentError("sandbox options: malformed runtime.v1.PodSandboxConfig");
  }
  s.name = cfg.metadata().name();
  s.hostname = cfg.hostname();
  const auto& ns = cfg.linux().security_context().namespace_options();
  s.host_network = ns.network() == runtime::v1::NODE;
  s.host_ipc = ns.ipc() == runtime::v1::NODE;
  s.host_pid = ns.pid() == runtime::v1::NODE;
  s.shared_pid = ns.pid() == runtime::v1::POD;
  s.cgroup_parent = cfg.linux().cgroup_parent();
  s.dns_servers = {cfg.dns_config().servers().begin(), cfg.dns_config().servers().end()};
  s.dns_searches = {cfg.dns_config().searches().begin(), cfg.dns_config().searches().end()};
  s.dns_options = {cfg.dns_config().options().begin(), cfg.dns_config().options().end()};
  s.sysctls = {cfg.linux().sysctls().begin(), cfg.linux().sysctls().end()};
  for (const auto& [key, value] : s.sysctls) {
    RETURN_IF_ERROR(ValidatePodSysctl(key, value, s));
  }
  if (!s.hostname.empty() && (s.hostname.size() > 64 || s.hostname.find('/') != std::string::npos)) {
    return absl::InvalidArgumentError(absl::StrFormat("invalid pod hostname \"%s\"", s.hostname));
  }
  return s;
}

}  // namespace kuasar
