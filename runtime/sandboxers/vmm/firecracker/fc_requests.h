// The Firecracker driver's wire side, as pure functions: its command line and the JSON
// bodies of its REST calls (src/firecracker/swagger/firecracker.yaml: BootSource,
// MachineConfiguration, Drive, NetworkInterface, Vsock, InstanceActionInfo) and what it
// reads back (InstanceInfo). Tests check every body against the published swagger.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/sandboxers/vmm/firecracker/fc_config.h"
#include "runtime/sandboxers/vmm/hypervisor.h"
#include "runtime/sandboxers/vmm/rest/rest_vmm_hypervisor.h"

namespace kuasar::vmm {

// `firecracker --api-sock P [--level Debug]`: the VM is configured over the API.
std::vector<std::string> BuildFcArgv(const FcConfig& config, const VmConfig& vm,
                                     const RestVmmPaths& paths);

// One pre-boot PUT: the path and its body.
struct FcRequest {
  std::string path;
  nlohmann::json body;
};

// Every PUT before InstanceStart, in order: /machine-config, /boot-source, /drives/{id},
// /network-interfaces/{id}, /vsock. INVALID_ARGUMENT / FAILED_PRECONDITION for what
// Firecracker cannot do (a shared dir: it has no virtio-fs; qcow2; > 32 vCPUs).
absl::StatusOr<std::vector<FcRequest>> BuildFcBootRequests(const FcConfig& config,
                                                           const VmConfig& vm,
                                                           const RestVmmPaths& paths);

// Firecracker ids: [A-Za-z0-9_]{1,64} (api_server: "API Resource IDs can only contain
// alphanumeric characters and underscores.").
absl::Status CheckFcId(std::string_view id);

// PUT /actions.
nlohmann::json FcAction(std::string_view action_type);

// GET /'s InstanceInfo "state": "Not started", "Running", "Paused".
absl::StatusOr<std::string> FcInstanceState(const nlohmann::json& info);

}  // namespace kuasar::vmm
