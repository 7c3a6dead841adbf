// StratoVirt's command line for one VM (StratoVirt docs/config_guidebook.md), as Kuasar's
// StratoVirt driver builds it: -name -machine -smp -m -kernel -initrd -append, QMP on a
// unix socket, and the agent's virtserialport agent.channel.0 on a unix socket chardev.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/sandboxers/vmm/hypervisor.h"
#include "runtime/sandboxers/vmm/stratovirt/sv_config.h"

namespace kuasar::vmm {

struct SvPaths {
  std::string qmp_socket;    // <socket_dir>/qmp.sock
  std::string agent_socket;  // <socket_dir>/agent.sock
  std::string vmm_log;       // <state_dir>/stratovirt.log: its stdout and stderr
  static SvPaths For(const VmConfig& vm);
};

absl::StatusOr<std::vector<std::string>> BuildSvArgv(const SvConfig& config, const VmConfig& vm,
                                                     const SvPaths& paths);

}  // namespace kuasar::vmm
