// PodSettings: what the runc sandboxer needs from the pod's CRI PodSandboxConfig (sent by
// containerd as Create's `options` Any), and the pod-level files derived from it
// (hostname, hosts, resolv.conf, a /dev/shm) that containers of the pod share.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "runtime/oci/oci_task_service.h"

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

// Writes hostname, hosts and resolv.conf into `dir` and mounts a tmpfs at dir/shm (unless
// the pod uses the host IPC namespace). Returns the paths to bind into containers.
absl::StatusOr<PodFiles> WritePodFiles(const PodSettings& settings, const std::string& dir);
// Unmounts dir/shm if mounted.
void RemovePodFiles(const std::string& dir);

}  // namespace kuasar
