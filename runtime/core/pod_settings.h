// PodSettings: what a sandboxer needs from the pod's CRI PodSandboxConfig (sent by
// containerd as Create's `options` Any): hostname, namespace modes, cgroup parent, DNS,
// sysctls. Plain data; every sandbox kind decodes it the same way.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace kuasar {

struct PodSettings {
  std::string name;  // metadata.name, for logs
  std::string hostname;
  bool host_network = false;
  bool host_ipc = false;
  bool host_pid = false;
  bool shared_pid = false;  // pid namespace mode POD
  std::string cgroup_parent;
  std::vector<std::string> dns_servers, dns_searches, dns_options;
  std::map<std::string, std::string> sysctls;

  nlohmann::json ToJson() const;
  static PodSettings FromJson(const nlohmann::json& j);
};

// Decodes Create's options. An empty type URL gives defaults (callers other than
// containerd's CRI); an unknown type or undecodable bytes are INVALID_ARGUMENT.
absl::StatusOr<PodSettings> DecodePodSettings(const std::string& type_url,
                                              const std::string& bytes);

// Accepts only namespaced sysctls (kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*,
// net.*) with safe names, and only when the pod owns that namespace.
absl::Status ValidatePodSysctl(const std::string& key, const std::string& value,
                               const PodSettings& settings);

}  // namespace kuasar
