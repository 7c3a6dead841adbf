#include "runtime/sandboxers/vmm/firecracker/fc_config.h"

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"

namespace kuasar::vmm {

absl::StatusOr<FcConfig> ParseFcConfig(TomlSection& s) {
  FcConfig c;
  std::string driver = "firecracker";
  RETURN_IF_ERROR(s.Get("driver", &driver));
  if (driver != "firecracker") {
    return s.Error("driver", absl::StrFormat("\"%s\" is not firecracker", driver));
  }
  RETURN_IF_ERROR(s.Get("path", &c.path));
  RETURN_IF_ERROR(s.Get("kernel_path", &c.kernel_path));
  RETURN_IF_ERROR(s.Get("initrd_path", &c.initrd_path));
  if (c.initrd_path.empty()) return s.Error("initrd_path", "the guest needs an initrd");
  std::string image_path;
  RETURN_IF_ERROR(s.Get("image_path", &image_path));
  if (!image_path.empty()) {
    return s.Error("image_path",
                   "a root disk image is not supported; the guest boots from initrd_path");
  }
  RETURN_IF_ERROR(s.Get("kernel_params", &c.kernel_params));
  RETURN_IF_ERROR(s.Get("default_vcpus", &c.vcpus, 1, 32));
  RETURN_IF_ERROR(s.Get("vcpus", &c.vcpus, 1, 32));
  RETURN_IF_ERROR(s.Get("default_memory", &c.memory_in_mb, 64, 1 << 20));
  RETURN_IF_ERROR(s.Get("memory_in_mb", &c.memory_in_mb, 64, 1 << 20));
  RETURN_IF_ERROR(s.Get("smt", &c.smt));
  RETURN_IF_ERROR(s.Get("debug", &c.debug));
  RETURN_IF_ERROR(s.Get("agent_vsock_port", &c.agent_vsock_port, 1, 0xfffffffe));
  RETURN_IF_ERROR(s.Get("api_timeout_ms", &c.api_timeout_ms, 100, 600'000));
  RETURN_IF_ERROR(ParseVmmCapabilities(s, &c.capabilities));
  RETURN_IF_ERROR(s.CheckNoUnknownKeys());
  return c;
}

absl::StatusOr<FcConfig> ParseFcConfig(const Config& config) {
  TomlSection top(config.root.get(), "", config.source), s(nullptr, "", "");
  RETURN_IF_ERROR(top.Sub("hypervisor", &s));
  return ParseFcConfig(s);
}

}  // namespace kuasar::vmm
