#include "sim/common/agent_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"

extern char** environ;

namespace kuasar::sim {
namespace {

struct ChildArgs {
  const char* path;
  char* const* argv;
  char* const* envp;
  int serve_fd;
  int sync_fd;   // read end: the parent's go-ahead (EOF = the parent died)
  int error_fd;  // write end, CLOEXEC: errno of a failed exec
  bool private_mounts;
};

// Runs in the clone()d child: only async-signal-safe calls until exec.
int ChildMain(void* arg) {
  const auto* c = static_cast<const ChildArgs*>(arg);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  char go = 0;
  if (::read(c->sync_fd, &go, 1) != 1) ::_exit(127);
  if (c->private_mounts) ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
  ::setsid();
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull >= 0) ::dup2(devnull, 0);
  int keep_below = 3;
  if (c->serve_fd >= 0) {
    if (c->serve_fd == 3) {
      ::fcntl(3, F_SETFD, 0);
    } else {
      ::dup2(c->serve_fd, 3);
    }
    keep_below = 4;
  }
  // Close everything else but the error pipe (CLOEXEC: exec closes it).
  for (int fd = keep_below; fd < 1024; ++fd) {
    if (fd != c->error_fd) ::close(fd);
  }
  ::execve(c->path, c->argv, c->envp);
  int err = errno;
  (void)!::write(c->error_fd, &err, sizeof(err));
  ::_exit(127);
}

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Resolves a bare name on PATH before clone (execvp is not async-signal-safe).
std::string ResolveOnPath(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string cand = absl::StrCat(dirs.substr(start, end - start), "/", name);
    if (::access(cand.c_str(), X_OK) == 0) return cand;
    start = end + 1;
  }
  return name;
}

absl::Status WriteProcFile(pid_t pid, const char* file, const std::string& text) {
  std::string path = absl::StrFormat("/proc/%d/%s", pid, file);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open", path);
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoStatus(errno, "write", path);
  }
  return absl::OkStatus();
}

int CloneFlags(AgentIsolation iso) {
  const int full = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC;
  if (iso == AgentIsolation::kFull) return full;
  if (iso == AgentIsolation::kUser) return full | CLONE_NEWUSER;
  return 0;
}

}  // namespace

absl::StatusOr<AgentProcess> AgentProcess::Launch(const AgentLaunch& launch) {
  std::string path = ResolveOnPath(launch.path);
  std::vector<std::string> argv_s = {path};
  argv_s.insert(argv_s.end(), launch.args.begin(), launch.args.end());
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) env_s.emplace_back(*e);
  env_s.insert(env_s.end(), launch.extra_env.begin(), launch.extra_env.end());
  std::vector<char*> argv = CStrings(argv_s), envp = CStrings(env_s);

  std::vector<AgentIsolation> tries;
  if (launch.isolation == AgentIsolation::kAuto) {
    if (::geteuid() == 0) tries.push_back(AgentIsolation::kFull);
    tries.push_back(AgentIsolation::kUser);
    tries.push_back(AgentIsolation::kNone);
  } else {
    tries.push_back(launch.isolation);
  }
  constexpr size_t kStack = 256 * 1024;
  auto stack = std::make_unique<char[]>(kStack);
  int clone_errno = 0;
  for (AgentIsolation iso : tries) {
    int sync[2], err[2];
    if (::pipe2(sync, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
    if (::pipe2(err, O_CLOEXEC) != 0) {
      ::close(sync[0]), ::close(sync[1]);
      return ErrnoStatus(errno, "pipe2");
    }
    UniqueFd sync_r(sync[0]), sync_w(sync[1]), err_r(err[0]), err_w(err[1]);
    ChildArgs args{path.c_str(),
                   argv.data(),
                   envp.data(),
                   launch.serve_fd,
                   sync_r.get(),
                   err_w.get(),
                   iso != AgentIsolation::kNone};
    int flags = CloneFlags(iso) | SIGCHLD;
    pid_t pid = ::clone(ChildMain, stack.get() + kStack, flags, &args);
    if (pid < 0) {
      clone_errno = errno;
      continue;  // EPERM/EINVAL: try the next, weaker isolation
    }
    AgentProcess p;
    p.pid_ = pid;
    p.reaped_ = false;
    p.isolation_ = iso;
    p.pidfd_.Reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    sync_r.Reset();
    err_w.Reset();
    if (iso == AgentIsolation::kUser) {
      absl::Status st = WriteProcFile(pid, "uid_map", absl::StrFormat("0 %d 1\n", ::geteuid()));
      if (st.ok()) st = WriteProcFile(pid, "setgroups", "deny\n");
      if (st.ok()) st = WriteProcFile(pid, "gid_map", absl::StrFormat("0 %d 1\n", ::getegid()));
      if (!st.ok()) return st;  // ~AgentProcess kills it
    }
    (void)!::write(sync_w.get(), "g", 1);
    int exec_errno = 0;
    ssize_t n;
    do {
      n = ::read(err_r.get(), &exec_errno, sizeof(exec_errno));
    } while (n < 0 && errno == EINTR);
    if (n == sizeof(exec_errno)) {
      p.KillAndReap();
      return ErrnoStatus(exec_errno, "exec guest agent", path);
    }
    if (tries.size() > 1 && iso != tries.front()) {
      spdlog::warn("op=agent-launch isolation={} reason=\"stronger isolation refused: {}\"",
                   iso == AgentIsolation::kUser ? "user" : "none", std::strerror(clone_errno));
    }
    return p;
  }
  return ErrnoStatus(clone_errno, "clone guest agent", path);
}

AgentProcess::AgentProcess(AgentProcess&& o) noexcept { *this = std::move(o); }

AgentProcess& AgentProcess::operator=(AgentProcess&& o) noexcept {
  if (this != &o) {
    Reset();
    pid_ = std::exchange(o.pid_, -1);
    pidfd_ = std::move(o.pidfd_);
    reaped_ = std::exchange(o.reaped_, true);
    isolation_ = o.isolation_;
  }
  return *this;
}

AgentProcess::~AgentProcess() { Reset(); }

void AgentProcess::Reset() {
  if (running()) KillAndReap();
  pid_ = -1;
  pidfd_.Reset();
  reaped_ = true;
}

absl::Status AgentProcess::Signal(int sig) {
  if (!running()) return absl::FailedPreconditionError("agent not running");
  if (pidfd_ && ::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) == 0) {
    return absl::OkStatus();
  }
  if (::kill(pid_, sig) != 0) return ErrnoStatus(errno, "kill agent", absl::StrCat(pid_));
  return absl::OkStatus();
}

std::optional<int> AgentProcess::TryReap() {
  if (reaped_) return std::nullopt;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return std::nullopt;
  reaped_ = true;
  return r < 0 ? 0 : status;
}

int AgentProcess::KillAndReap() {
  if (reaped_) return 0;
  (void)Signal(SIGKILL);
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  reaped_ = true;
  return status;
}

void AgentProcess::Freeze(bool stop) {
  if (!running()) return;
  const int sig = stop ? SIGSTOP : SIGCONT;
  if (isolation_ == AgentIsolation::kNone) {
    ::kill(-pid_, sig);  // its session's process group (it called setsid)
    return;
  }
  struct stat ns;
  if (::stat(absl::StrFormat("/proc/%d/ns/pid", pid_).c_str(), &ns) != 0) return;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return;
  while (dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    struct stat st;
    if (::stat(absl::StrFormat("/proc/%ld/ns/pid", pid).c_str(), &st) == 0 &&
        st.st_ino == ns.st_ino && st.st_dev == ns.st_dev) {
      ::kill(static_cast<pid_t>(pid), sig);
    }
  }
  ::closedir(proc);
}

}  // namespace kuasar::sim
