// The main shared by the QMP personalities (QEMU, StratoVirt): parse the QEMU-style
// command line, (daemonize,) serve QMP on every -qmp/-mon endpoint and a virtio-serial
// chardev server on every socket chardev (the agent's port backed by the guest), start
// the guest unless -S, and exit when it shuts down (SHUTDOWN event first) unless
// -no-shutdown.
#pragma once

#include <string>
#include <vector>

#include "sim/common/qmp_session.h"
#include "sim/common/sim_config.h"

namespace kuasar::sim {

struct QmpVmmFlavor {
  QmpDialect dialect = QmpDialect::kQemu;
  std::string prog;          // error prefix (argv[0]'s basename for QEMU)
  std::string version_text;  // -version output
  OJson greeting;
  OJson version;                // query-version's return
  bool replace_sockets = true;  // unlink a leftover socket file before binding
};

int RunQmpVmm(const QmpVmmFlavor& flavor, const SimConfig& config,
              const std::vector<std::string>& args);

}  // namespace kuasar::sim
