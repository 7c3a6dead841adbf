// The Cloud Hypervisor driver's wire side, as pure functions: its command line and the
// JSON bodies of its REST calls (vmm/src/api/openapi/cloud-hypervisor.yaml: VmConfig,
// DiskConfig, NetConfig, FsConfig, VmRemoveDevice) and what it reads back (VmInfo). Kept
// apart from the driver so tests check every body against the published schemas.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/sandboxers/vmm/clh/clh_config.h"
#include "runtime/sandboxers/vmm/hypervisor.h"
#include "runtime/sandboxers/vmm/rest/rest_vmm_hypervisor.h"

namespace kuasar::vmm {

inline constexpr std::string_view kClhApiRoot = "/api/v1/";
// The guest's vsock context id: any value >= 3 (the VM is alone on its hybrid socket).
inline constexpr uint32_t kGuestCid = 3;

// `cloud-hypervisor --api-socket path=P [-v]`: the VM is created over the API.
std::vector<std::string> BuildClhArgv(const ClhConfig& config, const VmConfig& vm,
                                      const RestVmmPaths& paths);

// KernelCmdline::ForGuest (console ttyS0) + both kernel_params.
absl::StatusOr<std::string> BuildClhKernelCmdline(const ClhConfig& config, const VmConfig& vm);

// PUT vm.create's VmConfig.
absl::StatusOr<nlohmann::json> BuildClhVmConfig(const ClhConfig& config, const VmConfig& vm,
                                                const RestVmmPaths& paths);

// Ids of our devices: [A-Za-z][A-Za-z0-9_.-]{0,31} (CH keeps "_disk0"... for its own).
absl::Status CheckClhDeviceId(std::string_view id);
// vm.add-disk / VmConfig.disks[] DiskConfig.
absl::StatusOr<nlohmann::json> ClhDiskConfig(const DiskDevice& disk);
// vm.add-net / VmConfig.net[] NetConfig.
absl::StatusOr<nlohmann::json> ClhNetConfig(const NetDevice& net);
// vm.remove-device's VmRemoveDevice.
nlohmann::json ClhRemoveDevice(std::string_view id);

// GET vm.info's "state" (Created, Running, Shutdown, Paused, BreakPoint).
absl::StatusOr<std::string> ClhVmState(const nlohmann::json& vm_info);

}  // namespace kuasar::vmm
