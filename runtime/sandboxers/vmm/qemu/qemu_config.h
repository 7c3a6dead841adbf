// QemuConfig: the [hypervisor] section when the vmm sandboxer drives QEMU. Keys follow
// Kuasar's config_qemu_x86_64.toml where one exists (qemu_path, kernel_path,
// initrd_path, kernel_params, machine_type, vcpus, memory_in_mb, block_device_driver,
// share_fs, virtiofs_*, use_vsock), with Kata's names accepted as aliases (path,
// default_vcpus, default_memory); docs/guest-image.md documents every key. Plain data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/core/config.h"
#include "runtime/core/toml_section.h"
#include "runtime/sandboxers/vmm/common/vmm_capabilities.h"

namespace kuasar::vmm {

enum class Accel { kAuto, kKvm, kTcg };
enum class ShareFs { kNone, kVirtioFs, kVirtio9p };

struct QemuConfig {
  std::string qemu_path = "/usr/bin/qemu-system-x86_64";
  std::string kernel_path = "/var/lib/kuasar/vmlinuz";
  std::string initrd_path = "/var/lib/kuasar/initramfs.img";
  std::string kernel_params;
  std::string machine_type = "q35";  // q35 | pc | microvm
  std::string machine_accelerators;  // extra -machine options, e.g. "kernel_irqchip=on"
  Accel accel = Accel::kAuto;        // auto: KVM if the probe says it works, else TCG
  std::string cpu_model;             // "": host under KVM, QEMU's default under TCG
  int64_t vcpus = 1;
  int64_t memory_in_mb = 512;
  ShareFs share_fs = ShareFs::kVirtioFs;  // the Debian cloud kernel has no 9p
  std::string virtiofs_daemon_path = "/usr/lib/qemu/virtiofsd";
  std::string virtiofs_cache = "auto";
  std::vector<std::string> virtiofs_extra_args;
  int64_t pcie_root_ports = 2;          // q35: free ports for hotplug
  std::vector<std::string> extra_args;  // appended to QEMU's command line as given
  bool debug = false;
  absl::Duration kvm_probe_timeout = absl::Seconds(5);
  std::string kvm_probe_cache = "/run/kuasar/kvm-probe.json";
  VmmCapabilities capabilities;  // vmm_capabilities: what the VMM keeps of root's
};

// Reads the [hypervisor] table (its `driver` key, if present, must be "qemu") and rejects
// unknown keys.
absl::StatusOr<QemuConfig> ParseQemuConfig(TomlSection& hypervisor);
// The keys every QEMU-based driver (qemu, libvirt) reads the same way: accel, cpu_model,
// vcpus (default_vcpus), memory_in_mb (default_memory).
absl::Status ParseQemuMachineKeys(TomlSection& hypervisor, Accel* accel, std::string* cpu_model,
                                  int64_t* vcpus, int64_t* memory_in_mb);
absl::StatusOr<QemuConfig> ParseQemuConfig(const Config& config);

std::string_view AccelName(Accel accel);
std::string_view ShareFsName(ShareFs share_fs);  // "virtio-fs", "virtio-9p", "none"

}  // namespace kuasar::vmm
