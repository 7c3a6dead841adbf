// The simulator's own flags, taken out of the command line before the personality parses
// the rest as the real VMM would. Every flag has an environment twin so a sandboxer that
// knows only the real VMM's command line can still steer the simulator.
//   --personality NAME   KUASAR_FAKE_VMM_PERSONALITY  (else argv[0]'s basename)
//   --agent PATH         KUASAR_AGENT                 guest agent binary (vmm-task)
//   --model FILE         KUASAR_FAKE_VMM_MODEL        model TOML (boot, memory, agent, faults)
//   --faults FILE        KUASAR_FAKE_VMM_FAULTS       TOML whose [faults] override the model's
//   --seed N             KUASAR_FAKE_VMM_SEED         sampling seed (reproducible boots)
//   --model-scale F      KUASAR_FAKE_VMM_SCALE        multiplies every modelled latency
//   --run-dir DIR        KUASAR_FAKE_VMM_RUN_DIR      where the guest's vsock port sockets live
//   --sim-log-level L    KUASAR_FAKE_VMM_LOG          trace|debug|info|warn|error|off
// Both "--flag value" and "--flag=value" work. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/common/personality.h"

namespace kuasar::sim {

struct SimFlags {
  std::optional<Personality> personality;
  std::string agent;
  std::string model;
  std::string faults;
  std::optional<uint64_t> seed;
  std::optional<double> scale;
  std::string run_dir;
  std::string log_level;
};

// Removes the simulator flags from *args (the VMM's arguments, argv[0] excluded) and
// returns them; environment variables fill what the flags leave unset.
absl::StatusOr<SimFlags> ExtractSimFlags(std::vector<std::string>* args);

}  // namespace kuasar::sim
