// Everything the simulator reads besides the VMM's own command line: the model file
// (fixtures/sim/<personality>.toml by default), its [agent] and [faults] tables, and the
// simulator flags that override them. Built once at start-up; read-only afterwards.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/common/boot_model.h"
#include "sim/common/fault_plan.h"
#include "sim/common/personality.h"
#include "sim/common/sim_flags.h"

namespace kuasar::sim {

// How the agent is isolated: "full" = fresh PID, mount, UTS and IPC namespaces (needs
// root); "user" = the same inside a new user namespace (unprivileged); "none"; "auto" =
// full as root, else user, else none (with a warning).
enum class AgentIsolation { kAuto, kFull, kUser, kNone };

struct AgentConfig {
  std::string path;                                  // vmm-task (or a stand-in)
  std::vector<std::string> extra_args;               // appended after the channel flags
  int64_t vsock_port = 1024;                         // CH/FC: the port the agent serves (Kuasar's)
  std::string serial_port_name = "agent.channel.0";  // QEMU/StratoVirt virtserialport name
  AgentIsolation isolation = AgentIsolation::kAuto;
};

struct SimConfig {
  Personality personality = Personality::kCloudHypervisor;
  std::string model_path;  // empty: built-in zero model (no latency, no extra memory)
  BootModel model;
  AgentConfig agent;
  FaultPlan faults;
  bool check_files = true;  // kernel/initrd/disk paths must exist, as the real VMM checks
  std::string run_dir;      // base for the guest's vsock port sockets; empty = beside them
  std::string log_level = "warn";
};

// Resolves the model file (flag, env, then <KUASAR_SIM_MODEL_DIR>/<name>.toml or
// <exe dir>/../share/kuasar/sim/<name>.toml) and reads it and the faults file.
absl::StatusOr<SimConfig> LoadSimConfig(Personality personality, const SimFlags& flags);

// Reads one model file into *config (exposed for tests).
absl::Status ReadModelFile(const std::string& path, SimConfig* config);

// The default agent: <exe dir>/vmm-task when present, else "vmm-task" on PATH.
std::string DefaultAgentPath();

}  // namespace kuasar::sim
