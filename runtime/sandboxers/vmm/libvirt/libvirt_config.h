// LibvirtConfig: the [hypervisor] section when the vmm sandboxer runs its VMs as libvirt
// domains (driver = "libvirt"). The keys mean what the qemu driver's do where they share a
// name (qemu_path is the domain's <emulator>), plus `uri` and `run_as_root`;
// docs/hypervisors.md lists every key. Plain data.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/core/config.h"
#include "runtime/core/toml_section.h"
#include "runtime/sandboxers/vmm/qemu/qemu_config.h"

namespace kuasar::vmm {

struct LibvirtConfig {
  std::string uri = "qemu:///system";
  std::string qemu_path = "/usr/bin/qemu-system-x86_64";  // <emulator>
  std::string kernel_path = "/var/lib/kuasar/vmlinuz";
  std::string initrd_path = "/var/lib/kuasar/initramfs.img";
  std::string kernel_params;
  std::string machine_type = "q35";  // q35 | pc
  Accel accel = Accel::kAuto;        // domain type 'kvm' or 'qemu' (TCG)
  std::string cpu_model;             // "": host-passthrough under KVM, libvirt's default else
  int64_t vcpus = 1;
  int64_t memory_in_mb = 512;
  ShareFs share_fs = ShareFs::kVirtioFs;  // virtio-fs or none (libvirt runs virtiofsd)
  std::string virtiofs_daemon_path = "/usr/lib/qemu/virtiofsd";
  std::string virtiofs_cache;  // "" (libvirt's default), "always" or "none"
  // A static DAC label +0:+0 without relabelling: QEMU runs as root, as the qemu driver's
  // does, and reads the root-owned image and state dirs. false: qemu.conf's user applies.
  bool run_as_root = true;
  bool debug = false;
  absl::Duration kvm_probe_timeout = absl::Seconds(5);
  std::string kvm_probe_cache = "/run/kuasar/kvm-probe.json";
};

// Reads the [hypervisor] table (its `driver` key must be "libvirt") and rejects unknown keys.
absl::StatusOr<LibvirtConfig> ParseLibvirtConfig(TomlSection& hypervisor);
absl::StatusOr<LibvirtConfig> ParseLibvirtConfig(const Config& config);

}  // namespace kuasar::vmm
