// ChildProcess: spawn a program with an explicit argv (never a shell) and own it until
// it is reaped. One owner per child; Wait/Kill may be called from any thread, but only
// one thread may wait at a time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/base/unique_fd.h"

namespace kuasar {

struct SpawnOptions {
  // Full environment; when unset the child inherits ours.
  std::optional<std::vector<std::string>> env;
  std::string cwd;
  // fds to become the child's 0/1/2; -1 means /dev/null.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  // Extra fds the child inherits: {our fd, the child's fd number} (e.g. a ready pipe).
  std::vector<std::pair<int, int>> inherit_fds;
  // Put the child in its own process group (so Kill can signal its descendants).
  bool new_process_group = false;
};

class ChildProcess {
 public:
  // Searches PATH when argv[0] has no '/'.
  static absl::StatusOr<ChildProcess> Spawn(const std::vector<std::string>& argv,
                                            const SpawnOptions& options = {});

  ChildProcess(ChildProcess&&) noexcept;
  ChildProcess& operator=(ChildProcess&&) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Kills (SIGKILL) and reaps a child still running, so none is ever left behind.
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  bool reaped() const { return reaped_; }

  // Blocks until the child exits; returns its wait status (as waitpid gives it).
  absl::StatusOr<int> Wait();
  // Waits up to `timeout`; DEADLINE_EXCEEDED if still running.
  absl::StatusOr<int> WaitFor(std::chrono::milliseconds timeout);
  absl::Status Signal(int sig);

 private:
  ChildProcess(pid_t pid, UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  absl::StatusOr<int> Reap(int flags);

  pid_t pid_ = -1;
  UniqueFd pidfd_;
  bool reaped_ = false;
  int status_ = 0;
};

// Exit code for a wait status: the code for a normal exit, 128+signal for a signal,
// as shells and containerd report it.
int ExitCodeFromWaitStatus(int wait_status);

}  // namespace kuasar
