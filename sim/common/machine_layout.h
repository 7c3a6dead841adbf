// MachineLayout: what a QEMU or StratoVirt command line means to the simulator: guest size
// and kernel, the QMP endpoints (-qmp, -mon chardev=...,mode=control), every socket server
// chardev, which one backs the agent's virtio-serial port (the virtserialport named
// [agent] serial_port_name, "agent.channel.0" as Kata and Kuasar name it), 9p shares, and
// the devices QMP should know. Device wiring is checked as QEMU checks it (bus present,
// chardev/fsdev/netdev found), with its error texts. Pure functions; thread-safe.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/common/qemu_cmdline.h"
#include "sim/common/qmp_session.h"
#include "sim/common/sim_config.h"

namespace kuasar::sim {

struct SocketEndpoint {
  std::string id;  // chardev id ("" for -qmp)
  std::string path;
  bool wait = false;  // server=on without wait=off: hold the VM until a client connects
};

struct MachineLayout {
  std::string name;
  std::string machine;
  double memory_mib = 128;
  int vcpus = 1;
  std::string kernel, initrd, append;
  bool start_paused = false, no_shutdown = false, daemonize = false;
  std::string pidfile, log_file;
  std::vector<SocketEndpoint> qmp;
  std::vector<SocketEndpoint> chardev_sockets;         // not used as QMP monitors
  std::string agent_socket;                            // path of the agent port's chardev, or ""
  std::string agent_port_id;                           // its virtserialport's -device id, or ""
  std::vector<std::pair<std::string, OJson>> devices;  // id, properties
  std::vector<std::string> shares;                     // "tag=path"
};

// Errors are complete messages in the binary's own format.
absl::StatusOr<MachineLayout> BuildMachineLayout(QmpDialect dialect, const QemuCmdline& cmdline,
                                                 const std::string& prog, const AgentConfig& agent,
                                                 bool check_files);

}  // namespace kuasar::sim
