// The QEMU command line for one VM, built from the driver's config and the VM's config:
// a pure function of its inputs (plus stat() of disk paths), so it is unit-tested
// without QEMU. Thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "runtime/sandboxers/vmm/hypervisor.h"
#include "runtime/sandboxers/vmm/qemu/qemu_config.h"

namespace kuasar::vmm {

// Where one VM's files live: sockets in the short socket dir, logs beside its state.
struct QemuPaths {
  std::string qmp_socket;       // <socket_dir>/qmp.sock
  std::string agent_socket;     // <socket_dir>/agent.sock (virtio-serial agent.channel.0)
  std::string virtiofs_socket;  // <socket_dir>/virtiofs.sock
  std::string console_log;      // <state_dir>/console.log: the guest's serial console
  std::string vmm_log;          // <state_dir>/qemu.log: QEMU's own stderr
  std::string virtiofsd_log;    // <state_dir>/virtiofsd.log
  std::string pid_file;         // <state_dir>/qemu.pid
  static QemuPaths For(const VmConfig& vm);
};

inline constexpr std::string_view kAgentPortName = "agent.channel.0";
inline constexpr std::string_view kAgentPortId = "agent-channel0";
inline constexpr std::string_view kAgentChardevId = "agent0";  // the port's socket chardev

// `accel` must be resolved (kKvm or kTcg).
absl::StatusOr<std::vector<std::string>> BuildQemuCommandLine(const QemuConfig& config,
                                                              const VmConfig& vm,
                                                              const QemuPaths& paths, Accel accel);

// The guest kernel command line (KernelCmdline::ForGuest + kernel_params of both).
absl::StatusOr<std::string> BuildGuestKernelCmdline(const QemuConfig& config, const VmConfig& vm);

// Ids QEMU accepts for devices and our hotplug bookkeeping: [A-Za-z][A-Za-z0-9_.-]{0,31}.
absl::Status CheckDeviceId(std::string_view id);
absl::Status CheckNetDevice(const NetDevice& net);
absl::Status CheckDiskDevice(const DiskDevice& disk);
// The block node of a disk, for -blockdev and blockdev-add alike ("drive-<id>").
nlohmann::json BlockdevNode(const DiskDevice& disk);

// Hotplug buses: q35's free root ports "hp0".."hpN-1"; pc hotplugs onto pci.0 (""); microvm
// cannot hotplug (empty list and false).
bool MachineCanHotplug(const QemuConfig& config);
std::vector<std::string> HotplugBuses(const QemuConfig& config);

// A QEMU option value: ',' doubled so a path cannot inject options.
std::string QemuOptValue(std::string_view value);
// "file" or "host_device" for a disk path.
std::string_view BlockFileDriver(const std::string& path);

}  // namespace kuasar::vmm
