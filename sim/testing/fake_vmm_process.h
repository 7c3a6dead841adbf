// FakeVmmProcess: the kuasar-fake-vmm binary run as a child of a test, playing one
// personality, with the stand-in agent and the CI model unless told otherwise. Waits for
// its socket; kills and reaps it on destruction. Plus the /proc probes tests need.
// Blocking; one thread.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/base/child_process.h"

namespace kuasar::sim::testing {

struct FakeVmmOptions {
  std::string personality;        // cloud-hypervisor, firecracker, qemu-system-x86_64, ...
  std::vector<std::string> args;  // the VMM's own command line
  std::string model = KUASAR_SIM_FIXTURES_DIR "/ci-fast.toml";
  std::string agent = KUASAR_STAND_IN_AGENT_BIN;
  std::vector<std::string> sim_flags;  // e.g. {"--faults", path}
  std::string wait_socket;             // returns once this accepts connections
  std::string log_file;                // the VMM's stdout+stderr
  bool via_symlink = true;             // argv[0] = bin/fake-vmm/<personality>
};

class FakeVmmProcess {
 public:
  static absl::StatusOr<FakeVmmProcess> Start(const FakeVmmOptions& options);

  pid_t pid() const { return child_.pid(); }
  absl::Status Signal(int sig) { return child_.Signal(sig); }
  // The wait status once it exits; DEADLINE_EXCEEDED if it is still running.
  absl::StatusOr<int> WaitExit(int timeout_ms) {
    return child_.WaitFor(std::chrono::milliseconds(timeout_ms));
  }
  std::string Log() const;
  // The VMM's children (the agent, once booted).
  std::vector<pid_t> Children() const;
  std::optional<pid_t> WaitAgent(int timeout_ms) const;

 private:
  FakeVmmProcess(ChildProcess child, std::string log)
      : child_(std::move(child)), log_(std::move(log)) {}
  ChildProcess child_;
  std::string log_;
};

// Polls `cond` every 10 ms until it holds or `timeout_ms` pass.
bool WaitUntil(const std::function<bool()>& cond, int timeout_ms);
// Pss from /proc/PID/smaps_rollup, in KiB.
absl::StatusOr<int64_t> PssKb(pid_t pid);
// Whether a process exists and is not a zombie.
bool ProcessAlive(pid_t pid);
// Writes `text` to a fresh file in `dir` and returns its path.
std::string WriteFile(const std::string& dir, const std::string& name, const std::string& text);

}  // namespace kuasar::sim::testing
