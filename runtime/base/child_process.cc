#include "runtime/base/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/base/status_macros.h"

extern char** environ;

namespace kuasar {
namespace {

std::vector<char*> CStrings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

int ExitCodeFromWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 255;
}

absl::StatusOr<ChildProcess> ChildProcess::Spawn(const std::vector<std::string>& argv,
                                                 const SpawnOptions& options) {
  if (argv.empty()) return absl::InvalidArgumentError("spawn: empty argv");
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  const int fds[3] = {options.stdin_fd, options.stdout_fd, options.stderr_fd};
  for (int i = 0; i < 3; ++i) {
    if (fds[i] >= 0) {
      posix_spawn_file_actions_adddup2(&actions, fds[i], i);
    } else {
      posix_spawn_file_actions_addopen(&actions, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY,
                                       0);
    }
  }
  for (const auto& [ours, theirs] : options.inherit_fds) {
    posix_spawn_file_actions_adddup2(&actions, ours, theirs);
  }
  if (!options.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, options.cwd.c_str());
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  if (options.new_process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&attr, 0);
  }
  posix_spawnattr_setflags(&attr, flags);

  std::vector<char*> cargv = CStrings(argv);
  std::vector<char*> cenv;
  if (options.env) cenv = CStrings(*options.env);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, argv[0].c_str(), &actions, &attr, cargv.data(),
                        options.env ? cenv.data() : environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return ErrnoStatus(rc, "spawn", absl::StrJoin(argv, " "));
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  return ChildProcess(pid, std::move(pidfd));
}

ChildProcess::ChildProcess(ChildProcess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      pidfd_(std::move(o.pidfd_)),
      reaped_(std::exchange(o.reaped_, true)),
      status_(o.status_) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    this->~ChildProcess();
    pid_ = std::exchange(o.pid_, -1);
    pidfd_ = std::move(o.pidfd_);
    reaped_ = std::exchange(o.reaped_, true);
    status_ = o.status_;
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !reaped_) {
    (void)Signal(SIGKILL);
    (void)Wait();
  }
}

absl::StatusOr<int> ChildProcess::Reap(int flags) {
  if (reaped_) return status_;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, flags);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return ErrnoStatus(errno, "waitpid", absl::StrCat(pid_));
  if (r == 0) return absl::DeadlineExceededError(absl::StrCat("pid ", pid_, " still running"));
  reaped_ = true;
  status_ = status;
  return status;
}

absl::StatusOr<int> ChildProcess::Wait() { return Reap(0); }

absl::StatusOr<int> ChildProcess::WaitFor(std::chrono::milliseconds timeout) {
  if (reaped_) return status_;
  if (pidfd_) {
    pollfd p{pidfd_.get(), POLLIN, 0};
    int r;
    do {
      r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    } while (r < 0 && errno == EINTR);
    if (r == 0) return absl::DeadlineExceededError(absl::StrCat("pid ", pid_, " still running"));
    return Reap(0);
  }
  // No pidfd (old kernel): poll with WNOHANG.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto st = Reap(WNOHANG);
    if (st.ok() || !absl::IsDeadlineExceeded(st.status())) return st;
    if (std::chrono::steady_clock::now() >= deadline) return st;
    ::usleep(2000);
  }
}

absl::Status ChildProcess::Signal(int sig) {
  if (reaped_ || pid_ <= 0) return absl::FailedPreconditionError("process already reaped");
  if (pidfd_) {
    if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) == 0) {
      return absl::OkStatus();
    }
    return ErrnoStatus(errno, "pidfd_send_signal", absl::StrCat(pid_));
  }
  if (::kill(pid_, sig) != 0) return ErrnoStatus(errno, "kill", absl::StrCat(pid_));
  return absl::OkStatus();
}

}  // namespace kuasar
