// The Cloud Hypervisor personality's main: parses CH's command line, serves the REST API
// on --api-socket, creates and boots the VM from the command line when it has a payload,
// and exits when the guest powers off or on vmm.shutdown. Hybrid vsock on the VmConfig's
// vsock.socket, bound at boot (or hot-add), as CH binds it when it creates the device.
#pragma once

#include <string>
#include <vector>

#include "sim/common/sim_config.h"

namespace kuasar::sim::clh {

// `args` exclude argv[0]. Returns the process exit code.
int RunCloudHypervisor(const SimConfig& config, const std::vector<std::string>& args);

}  // namespace kuasar::sim::clh
