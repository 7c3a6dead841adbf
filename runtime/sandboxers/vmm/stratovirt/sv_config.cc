#include "runtime/sandboxers/vmm/stratovirt/sv_config.h"

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"

namespace kuasar::vmm {

bool SvMachineIsPci(const SvConfig& config) { return config.machine_type.rfind("microvm", 0) != 0; }

absl::StatusOr<SvConfig> ParseSvConfig(TomlSection& s) {
  SvConfig c;
  std::string driver = "stratovirt";
  RETURN_IF_ERROR(s.Get("driver", &driver));
  if (driver != "stratovirt") {
    return s.Error("driver", absl::StrFormat("\"%s\" is not stratovirt", driver));
  }
  RETURN_IF_ERROR(s.Get("path", &c.path));
  RETURN_IF_ERROR(s.Get("machine_type", &c.machine_type));
  if (c.machine_type.empty()) return s.Error("machine_type", "must not be empty");
  RETURN_IF_ERROR(s.Get("kernel_path", &c.kernel_path));
  std::string image_path;
  RETURN_IF_ERROR(s.Get("image_path", &image_path));
  if (!image_path.empty()) {
    return s.Error("image_path",
                   "a root disk image is not supported; the guest boots from initrd_path");
  }
  RETURN_IF_ERROR(s.Get("initrd_path", &c.initrd_path));
  if (c.initrd_path.empty()) return s.Error("initrd_path", "the guest needs an initrd");
  RETURN_IF_ERROR(s.Get("kernel_params", &c.kernel_params));
  RETURN_IF_ERROR(s.Get("firmware", &c.firmware));
  RETURN_IF_ERROR(s.Get("vcpus", &c.vcpus, 1, 254));
  RETURN_IF_ERROR(s.Get("memory_in_mb", &c.memory_in_mb, 64, 1 << 20));
  std::string block = "virtio-blk";
  RETURN_IF_ERROR(s.Get("block_device_driver", &block));
  if (block != "virtio-blk") {
    return s.Error("block_device_driver", absl::StrFormat("\"%s\": only virtio-blk", block));
  }
  RETURN_IF_ERROR(s.Get("debug", &c.debug));
  RETURN_IF_ERROR(s.Get("enable_mem_prealloc", &c.mem_prealloc));
  TomlSection fs(nullptr, "", "");
  RETURN_IF_ERROR(s.Sub("virtiofsd_conf", &fs));
  if (fs.present()) {
    return s.Error("virtiofsd_conf",
                   "shared directories (vhost-user-fs) are not implemented by the stratovirt "
                   "driver yet; remove the section");
  }
  RETURN_IF_ERROR(ParseVmmCapabilities(s, &c.capabilities));
  RETURN_IF_ERROR(s.CheckNoUnknownKeys());
  return c;
}

absl::StatusOr<SvConfig> ParseSvConfig(const Config& config) {
  TomlSection top(config.root.get(), "", config.source), s(nullptr, "", "");
  RETURN_IF_ERROR(top.Sub("hypervisor", &s));
  return ParseSvConfig(s);
}

}  // namespace kuasar::vmm
