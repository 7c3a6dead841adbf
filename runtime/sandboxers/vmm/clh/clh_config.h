// ClhConfig: the [hypervisor] section when the vmm sandboxer drives Cloud Hypervisor.
// Keys follow Kuasar's config_clh.toml (path, vcpus, memory_in_mb, kernel_path,
// image_path, initrd_path, kernel_params, hugepages, entropy_source, debug,
// [hypervisor.task] and [hypervisor.virtiofsd]) plus agent_vsock_port and api_timeout_ms;
// docs/hypervisors.md documents every key. Plain data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/core/config.h"
#include "runtime/core/toml_section.h"
#include "runtime/sandboxers/vmm/common/vmm_capabilities.h"

namespace kuasar::vmm {

struct ClhConfig {
  std::string path = "/usr/local/bin/cloud-hypervisor";
  std::string kernel_path = "/var/lib/kuasar/vmlinuz";
  std::string initrd_path = "/var/lib/kuasar/initramfs.img";
  std::string kernel_params;
  int64_t vcpus = 1;
  int64_t memory_in_mb = 512;
  bool hugepages = false;
  std::string entropy_source = "/dev/urandom";
  bool debug = false;               // also [hypervisor.task] debug
  int64_t agent_vsock_port = 1024;  // where vmm-task listens in the guest
  int64_t api_timeout_ms = 10'000;  // per REST call
  // [hypervisor.virtiofsd]: the daemon behind VmConfig::shared_dir (virtio-fs is CH's only
  // shared file system).
  std::string virtiofsd_path = "/usr/lib/qemu/virtiofsd";
  std::string virtiofs_cache = "auto";  // auto | always | never
  std::vector<std::string> virtiofsd_extra_args;
  VmmCapabilities capabilities;  // vmm_capabilities: what the VMM keeps of root's
};

// Reads the [hypervisor] table (its `driver` key, if present, must be "cloud-hypervisor")
// and rejects unknown keys.
absl::StatusOr<ClhConfig> ParseClhConfig(TomlSection& hypervisor);
absl::StatusOr<ClhConfig> ParseClhConfig(const Config& config);

}  // namespace kuasar::vmm
