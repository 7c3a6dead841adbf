// SvConfig: the [hypervisor] section when the vmm sandboxer drives StratoVirt. Keys
// follow Kuasar's config_stratovirt_x86_64.toml (path, machine_type, kernel_path,
// image_path, initrd_path, kernel_params, firmware, vcpus, memory_in_mb,
// block_device_driver, debug, enable_mem_prealloc, [hypervisor.virtiofsd_conf]);
// docs/hypervisors.md documents every key. Plain data.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/core/config.h"
#include "runtime/core/toml_section.h"
#include "runtime/sandboxers/vmm/common/vmm_capabilities.h"

namespace kuasar::vmm {

struct SvConfig {
  std::string path = "/usr/bin/stratovirt";
  // "microvm" (virtio-mmio devices, direct kernel boot) or a standard machine ("q35",
  // "virt"; virtio-pci devices on pcie.0), with options after a comma ("q35,mem-share=on").
  std::string machine_type = "microvm";
  std::string kernel_path = "/var/lib/kuasar/vmlinuz";
  std::string initrd_path = "/var/lib/kuasar/initramfs.img";
  std::string kernel_params;
  std::string firmware;  // pflash image for standard machines
  int64_t vcpus = 1;
  int64_t memory_in_mb = 512;
  bool debug = false;
  bool mem_prealloc = false;  // enable_mem_prealloc
  VmmCapabilities capabilities;  // vmm_capabilities: what the VMM keeps of root's
};

// True for machine types whose devices sit on PCI (everything but microvm).
bool SvMachineIsPci(const SvConfig& config);

// Reads the [hypervisor] table (`driver` must be "stratovirt") and rejects unknown keys.
absl::StatusOr<SvConfig> ParseSvConfig(TomlSection& hypervisor);
absl::StatusOr<SvConfig> ParseSvConfig(const Config& config);

}  // namespace kuasar::vmm
