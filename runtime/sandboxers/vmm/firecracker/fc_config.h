// FcConfig: the [hypervisor] section when the vmm sandboxer drives Firecracker. Kuasar
// has no Firecracker driver, so the keys are those of its Cloud Hypervisor config that
// apply (path, vcpus, memory_in_mb, kernel_path, initrd_path, kernel_params, debug) plus
// smt, agent_vsock_port and api_timeout_ms; Kata's default_vcpus / default_memory are
// accepted as aliases. docs/hypervisors.md documents every key. Plain data.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/core/config.h"
#include "runtime/core/toml_section.h"
#include "runtime/sandboxers/vmm/common/vmm_capabilities.h"

namespace kuasar::vmm {

struct FcConfig {
  std::string path = "/usr/local/bin/firecracker";
  std::string kernel_path = "/var/lib/kuasar/vmlinuz";
  std::string initrd_path = "/var/lib/kuasar/initramfs.img";
  std::string kernel_params;
  int64_t vcpus = 1;  // Firecracker: 1..32
  int64_t memory_in_mb = 512;
  bool smt = false;
  bool debug = false;
  int64_t agent_vsock_port = 1024;
  int64_t api_timeout_ms = 10'000;
  VmmCapabilities capabilities;  // vmm_capabilities: what the VMM keeps of root's
};

// Reads the [hypervisor] table (`driver` must be "firecracker") and rejects unknown keys.
absl::StatusOr<FcConfig> ParseFcConfig(TomlSection& hypervisor);
absl::StatusOr<FcConfig> ParseFcConfig(const Config& config);

}  // namespace kuasar::vmm
