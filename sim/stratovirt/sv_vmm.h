// The StratoVirt personality: StratoVirt's command line (docs/config_guidebook.md; Kuasar
// passes -name -uuid -machine -qmp unix:PATH,server,nowait -kernel -initrd -append -smp
// -m -pidfile -D -global -daemonize -disable-seccomp), its QMP subset (docs/qmp.md:
// greeting without capabilities, no negotiation required, compact JSON) and a
// virtio-serial agent channel.
#pragma once

#include <string>
#include <vector>

#include "sim/common/sim_config.h"

namespace kuasar::sim::stratovirt {

int RunStratoVirt(const SimConfig& config, const std::vector<std::string>& args);

}  // namespace kuasar::sim::stratovirt
