// The guest agent as a process: started the way a guest's init would be, in fresh PID,
// mount, UTS and IPC namespaces (its own PID 1), sharing the VMM's network namespace (the
// sandboxer starts the VMM in the pod's netns, so the agent sees the pod network). It dies
// with the VMM (PR_SET_PDEATHSIG; the PID namespace takes its descendants). Owned by one
// thread: the VMM's io thread, which must also be the thread that launched it (the
// parent-death signal follows the launching thread).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/base/unique_fd.h"
#include "sim/common/sim_config.h"

namespace kuasar::sim {

struct AgentLaunch {
  std::string path;
  std::vector<std::string> args;       // after argv[0]
  std::vector<std::string> extra_env;  // "KEY=VALUE", added to the VMM's environment
  int serve_fd = -1;                   // ours; becomes the agent's fd 3
  AgentIsolation isolation = AgentIsolation::kAuto;
};

class AgentProcess {
 public:
  // Fails if the binary cannot be executed (the exec error comes back synchronously).
  static absl::StatusOr<AgentProcess> Launch(const AgentLaunch& launch);

  AgentProcess(AgentProcess&&) noexcept;
  AgentProcess& operator=(AgentProcess&&) noexcept;
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;
  ~AgentProcess();  // SIGKILL and reap if still running

  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }  // readable once the agent has exited
  AgentIsolation isolation() const { return isolation_; }
  bool running() const { return pid_ > 0 && !reaped_; }

  absl::Status Signal(int sig);
  // The wait status once exited (reaping it), nullopt while it runs.
  std::optional<int> TryReap();
  // SIGKILL, then reap; returns the wait status.
  int KillAndReap();
  // Pause (SIGSTOP) or resume (SIGCONT) the agent and every process in its PID namespace,
  // as stopping a VM's vCPUs freezes everything in the guest.
  void Freeze(bool stop);

 private:
  AgentProcess() = default;
  void Reset();

  pid_t pid_ = -1;
  UniqueFd pidfd_;
  bool reaped_ = true;
  AgentIsolation isolation_ = AgentIsolation::kNone;
};

}  // namespace kuasar::sim
