// LocalSpawner: runs programs as the agent's own children (explicit argv, never a
// shell). The agent's Reaper reaps them and reports their exits into the ExitRegistry,
// which is where WaitExit looks; so the OCI runtime's create/exec, its short commands and
// ExecVMProcess all share one reaping path and none races the global waitpid(-1).
// Thread-safe.
#pragma once

#include <sys/types.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/oci/container_engine.h"
#include "runtime/oci/exit_registry.h"

namespace kuasar::guest {

struct LocalSpawnOptions {
  // Full environment; unset: inherit the agent's.
  std::optional<std::vector<std::string>> env;
  // fds to become 0/1/2; -1 means /dev/null.
  std::array<int, 3> stdio = {-1, -1, -1};
  // Own process group, so a timeout can kill what the program started too.
  bool new_process_group = false;
};

class LocalSpawner final : public ProcessSpawner {
 public:
  explicit LocalSpawner(ExitRegistry* exits) : exits_(exits) {}

  absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv,
                              std::array<int, 3> stdio) override;
  // DEADLINE_EXCEEDED after `timeout` (the process keeps running; its exit is still
  // reaped and then dropped).
  absl::StatusOr<int> WaitExit(pid_t pid, absl::Duration timeout) override;

  absl::StatusOr<pid_t> SpawnWith(const std::vector<std::string>& argv,
                                  const LocalSpawnOptions& options);

  ExitRegistry* exits() const { return exits_; }

 private:
  ExitRegistry* exits_;
};

}  // namespace kuasar::guest
