// Cloud Hypervisor's VmConfig as JSON (vmm/src/api/openapi/cloud-hypervisor.yaml): the
// checks vm.create makes (serde-style messages for shape errors, CH's validation messages
// for the rest), the defaults vm.info reports, and device ids and PCI addresses assigned
// as CH's device manager does ("_disk0", "_net1", ...; one counter across kinds). Pure
// functions over JSON; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "sim/common/guest_control.h"

namespace kuasar::sim::clh {

// The device lists of a VmConfig, each with CH's id prefix.
struct DeviceList {
  const char* key;     // "disks", "net", ...
  const char* prefix;  // "_disk", "_net", ...
};
const std::vector<DeviceList>& DeviceLists();

// Shape errors (INVALID_ARGUMENT, serde's wording: "missing field `payload`"), then CH's
// validation (FAILED_PRECONDITION: "Max CPUs lower than boot CPUs"). Fills defaults.
absl::Status NormalizeVmConfig(nlohmann::json* config);

// Checks one device body for vm.add-<kind> ("disks", "net", "fs", "pmem", "devices",
// "vsock") with the same rules.
absl::Status NormalizeDevice(const std::string& list_key, nlohmann::json* device);

// Whether `id` is used by any device of the config.
bool IdInUse(const nlohmann::json& config, const std::string& id);

// Gives every device without an id the next "_<kind>N" id.
void AssignDeviceIds(nlohmann::json* config, int* counter);

// What the guest is booted with: memory, vCPUs, kernel command line, shared dirs.
GuestSpec SpecFromConfig(const nlohmann::json& config);

}  // namespace kuasar::sim::clh
