// What the shim reads from an OCI bundle's config.json: whether CRI made it as a pod's
// sandbox (pause) container or as one of its containers, which pod, and the pod's
// network namespace and hostname (the VM is booted for the sandbox container).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace kuasar::shim {

struct BundleInfo {
  bool is_sandbox = true;   // io.kubernetes.cri.container-type == "sandbox", or no CRI
  std::string sandbox_id;   // io.kubernetes.cri.sandbox-id, else the container's own id
  std::string netns_path;   // linux.namespaces[type=network].path, may be empty
  std::string hostname;
};

// `id` is the container id containerd passed; `bundle` the directory holding config.json.
absl::StatusOr<BundleInfo> ReadBundleInfo(const std::string& bundle, const std::string& id);

}  // namespace kuasar::shim
