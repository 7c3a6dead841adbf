// The QEMU personality (qemu-system-x86_64): QEMU 7.2's command line subset a VMM driver
// uses, QMP with QEMU's greeting, negotiation and errors, and virtio-serial agent channels.
#pragma once

#include <string>
#include <vector>

#include "sim/common/sim_config.h"

namespace kuasar::sim::qemu {

// `argv0` names the program in error messages, as QEMU's do.
int RunQemu(const SimConfig& config, const std::vector<std::string>& args,
            const std::string& argv0);

}  // namespace kuasar::sim::qemu
