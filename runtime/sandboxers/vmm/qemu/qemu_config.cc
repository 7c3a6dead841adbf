#include "runtime/sandboxers/vmm/qemu/qemu_config.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"

namespace kuasar::vmm {
namespace {

// Kuasar spells enum values in Rust style ("Virtio9P", "VirtioBlk"): compare loosely.
std::string Loose(std::string s) {
  std::string out;
  for (char c : absl::AsciiStrToLower(s)) {
    if (c != '-' && c != '_') out.push_back(c);
  }
  return out;
}

}  // namespace

std::string_view AccelName(Accel accel) {
  switch (accel) {
    case Accel::kKvm:
      return "kvm";
    case Accel::kTcg:
      return "tcg";
    case Accel::kAuto:
      break;
  }
  return "auto";
}

std::string_view ShareFsName(ShareFs share_fs) {
  switch (share_fs) {
    case ShareFs::kVirtioFs:
      return "virtio-fs";
    case ShareFs::kVirtio9p:
      return "virtio-9p";
    case ShareFs::kNone:
      break;
  }
  return "none";
}

absl::Status ParseQemuMachineKeys(TomlSection& s, Accel* accel, std::string* cpu_model,
                                  int64_t* vcpus, int64_t* memory_in_mb) {
  std::string name = "auto";
  RETURN_IF_ERROR(s.Get("accel", &name));
  if (name == "auto") {
    *accel = Accel::kAuto;
  } else if (name == "kvm") {
    *accel = Accel::kKvm;
  } else if (name == "tcg") {
    *accel = Accel::kTcg;
  } else {
    return s.Error("accel", absl::StrFormat("\"%s\": expected auto, kvm or tcg", name));
  }
  RETURN_IF_ERROR(s.Get("cpu_model", cpu_model));
  // Kata's spellings first, then ours: the later key wins.
  RETURN_IF_ERROR(s.Get("default_vcpus", vcpus, 1, 256));
  RETURN_IF_ERROR(s.Get("vcpus", vcpus, 1, 256));
  RETURN_IF_ERROR(s.Get("default_memory", memory_in_mb, 64, 1 << 20));
  RETURN_IF_ERROR(s.Get("memory_in_mb", memory_in_mb, 64, 1 << 20));
  return absl::OkStatus();
}

absl::StatusOr<QemuConfig> ParseQemuConfig(TomlSection& s) {
  QemuConfig c;
  std::string driver = "qemu";
  RETURN_IF_ERROR(s.Get("driver", &driver));
  if (driver != "qemu") return s.Error("driver", absl::StrFormat("\"%s\" is not qemu", driver));
  RETURN_IF_ERROR(s.Get("path", &c.qemu_path));  // Kata's name
  RETURN_IF_ERROR(s.Get("qemu_path", &c.qemu_path));
  RETURN_IF_ERROR(s.Get("kernel_path", &c.kernel_path));
  RETURN_IF_ERROR(s.Get("initrd_path", &c.initrd_path));
  RETURN_IF_ERROR(s.Get("kernel_params", &c.kernel_params));
  RETURN_IF_ERROR(s.Get("machine_type", &c.machine_type));
  if (c.machine_type != "q35" && c.machine_type != "pc" && c.machine_type != "microvm") {
    return s.Error("machine_type",
                   absl::StrFormat("\"%s\": expected q35, pc or microvm", c.machine_type));
  }
  RETURN_IF_ERROR(s.Get("machine_accelerators", &c.machine_accelerators));
  RETURN_IF_ERROR(ParseQemuMachineKeys(s, &c.accel, &c.cpu_model, &c.vcpus, &c.memory_in_mb));
  std::string block = "virtio-blk";
  RETURN_IF_ERROR(s.Get("block_device_driver", &block));
  if (Loose(block) != "virtioblk") {
    return s.Error("block_device_driver",
                   absl::StrFormat("\"%s\": only virtio-blk is supported", block));
  }
  std::string share = "virtio-fs";
  RETURN_IF_ERROR(s.Get("share_fs", &share));
  std::string loose = Loose(share);
  if (loose == "virtiofs") {
    c.share_fs = ShareFs::kVirtioFs;
  } else if (loose == "virtio9p" || loose == "9p") {
    c.share_fs = ShareFs::kVirtio9p;
  } else if (loose == "none" || loose.empty()) {
    c.share_fs = ShareFs::kNone;
  } else {
    return s.Error("share_fs",
                   absl::StrFormat("\"%s\": expected virtio-fs, virtio-9p or none", share));
  }
  RETURN_IF_ERROR(s.Get("virtiofs_daemon_path", &c.virtiofs_daemon_path));
  RETURN_IF_ERROR(s.Get("virtiofs_cache", &c.virtiofs_cache));
  if (c.virtiofs_cache != "auto" && c.virtiofs_cache != "always" && c.virtiofs_cache != "never" &&
      c.virtiofs_cache != "none") {
    return s.Error("virtiofs_cache", "expected auto, always or never");
  }
  RETURN_IF_ERROR(s.Get("virtiofs_extra_args", &c.virtiofs_extra_args));
  bool use_vsock = false, enable_vhost_vsock = false;
  RETURN_IF_ERROR(s.Get("use_vsock", &use_vsock));
  RETURN_IF_ERROR(s.Get("enable_vhost_vsock", &enable_vhost_vsock));
  if (use_vsock || enable_vhost_vsock) {
    return s.Error("use_vsock",
                   "vhost-vsock is not supported by the qemu driver; the agent channel is "
                   "virtio-serial");
  }
  RETURN_IF_ERROR(s.Get("pcie_root_ports", &c.pcie_root_ports, 0, 32));
  RETURN_IF_ERROR(s.Get("extra_args", &c.extra_args));
  RETURN_IF_ERROR(s.Get("debug", &c.debug));
  int64_t probe_ms = absl::ToInt64Milliseconds(c.kvm_probe_timeout);
  RETURN_IF_ERROR(s.Get("kvm_probe_timeout_ms", &probe_ms, 100, 120'000));
  c.kvm_probe_timeout = absl::Milliseconds(probe_ms);
  RETURN_IF_ERROR(s.Get("kvm_probe_cache", &c.kvm_probe_cache));
  RETURN_IF_ERROR(ParseVmmCapabilities(s, &c.capabilities));
  RETURN_IF_ERROR(s.CheckNoUnknownKeys());
  return c;
}

absl::StatusOr<QemuConfig> ParseQemuConfig(const Config& config) {
  TomlSection top(config.root.get(), "", config.source), s(nullptr, "", "");
  RETURN_IF_ERROR(top.Sub("hypervisor", &s));
  return ParseQemuConfig(s);
}

}  // namespace kuasar::vmm
