#include "runtime/sandboxers/vmm/libvirt/libvirt_config.h"

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"

namespace kuasar::vmm {

absl::StatusOr<LibvirtConfig> ParseLibvirtConfig(TomlSection& s) {
  LibvirtConfig c;
  std::string driver;
  RETURN_IF_ERROR(s.Get("driver", &driver));
  if (driver != "libvirt") {
    return s.Error("driver", absl::StrFormat("\"%s\" is not libvirt", driver));
  }
  RETURN_IF_ERROR(s.Get("uri", &c.uri));
  if (c.uri.empty()) return s.Error("uri", "must not be empty");
  RETURN_IF_ERROR(s.Get("path", &c.qemu_path));
  RETURN_IF_ERROR(s.Get("qemu_path", &c.qemu_path));
  RETURN_IF_ERROR(s.Get("kernel_path", &c.kernel_path));
  RETURN_IF_ERROR(s.Get("initrd_path", &c.initrd_path));
  RETURN_IF_ERROR(s.Get("kernel_params", &c.kernel_params));
  RETURN_IF_ERROR(s.Get("machine_type", &c.machine_type));
  if (c.machine_type != "q35" && c.machine_type != "pc") {
    return s.Error("machine_type", absl::StrFormat("\"%s\": expected q35 or pc", c.machine_type));
  }
  RETURN_IF_ERROR(ParseQemuMachineKeys(s, &c.accel, &c.cpu_model, &c.vcpus, &c.memory_in_mb));
  std::string share = "virtio-fs";
  RETURN_IF_ERROR(s.Get("share_fs", &share));
  if (share == "virtio-fs" || share == "VirtioFS") {
    c.share_fs = ShareFs::kVirtioFs;
  } else if (share == "none" || share.empty()) {
    c.share_fs = ShareFs::kNone;
  } else {
    return s.Error("share_fs", absl::StrFormat("\"%s\": expected virtio-fs or none", share));
  }
  RETURN_IF_ERROR(s.Get("virtiofs_daemon_path", &c.virtiofs_daemon_path));
  RETURN_IF_ERROR(s.Get("virtiofs_cache", &c.virtiofs_cache));
  if (!c.virtiofs_cache.empty() && c.virtiofs_cache != "always" && c.virtiofs_cache != "none") {
    return s.Error("virtiofs_cache", "expected always or none (or leave it out)");
  }
  RETURN_IF_ERROR(s.Get("run_as_root", &c.run_as_root));
  RETURN_IF_ERROR(s.Get("debug", &c.debug));
  int64_t probe_ms = absl::ToInt64Milliseconds(c.kvm_probe_timeout);
  RETURN_IF_ERROR(s.Get("kvm_probe_timeout_ms", &probe_ms, 100, 120'000));
  c.kvm_probe_timeout = absl::Milliseconds(probe_ms);
  RETURN_IF_ERROR(s.Get("kvm_probe_cache", &c.kvm_probe_cache));
  RETURN_IF_ERROR(s.CheckNoUnknownKeys());
  return c;
}

absl::StatusOr<LibvirtConfig> ParseLibvirtConfig(const Config& config) {
  TomlSection top(config.root.get(), "", config.source), s(nullptr, "", "");
  RETURN_IF_ERROR(top.Sub("hypervisor", &s));
  return ParseLibvirtConfig(s);
}

}  // namespace kuasar::vmm
