// The Firecracker personality's main: parses Firecracker's command line, serves its REST
// API on --api-sock (unless --no-api), applies --config-file and starts the microVM at
// once when given one, binds the hybrid vsock socket at PUT /vsock, and exits when the
// guest shuts down (Firecracker has no reboot).
#pragma once

#include <string>
#include <vector>

#include "sim/common/sim_config.h"

namespace kuasar::sim::fc {

int RunFirecracker(const SimConfig& config, const std::vector<std::string>& args);

}  // namespace kuasar::sim::fc
