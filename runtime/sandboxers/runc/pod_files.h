// Pod-level files of a runc pod: hostname, hosts and resolv.conf written into the sandbox
// dir and a tmpfs for the pod's /dev/shm, bound into every container that lacks them (what
// containerd's pause sandbox would provide).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "runtime/core/pod_settings.h"
#include "runtime/oci/oci_task_service.h"

namespace kuasar {

// Writes hostname, hosts and resolv.conf into `dir` and mounts a tmpfs at dir/shm (unless
// the pod uses the host IPC namespace). Returns the paths to bind into containers.
absl::StatusOr<PodFiles> WritePodFiles(const PodSettings& settings, const std::string& dir);
// Unmounts dir/shm if mounted.
void RemovePodFiles(const std::string& dir);

}  // namespace kuasar
