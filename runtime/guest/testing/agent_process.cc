#include "runtime/guest/testing/agent_process.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/unique_fd.h"

namespace kuasar::guest::testing {

std::string VmmTaskPath() { return KUASAR_VMM_TASK_PATH; }

std::string AgentUnavailableReason() {
  for (const char* dir :
       {"/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/", "/usr/local/bin/", "/usr/local/sbin/"}) {
    for (const char* rt : {"runc", "crun"}) {
      if (::access((std::string(dir) + rt).c_str(), X_OK) == 0) return "";
    }
  }
  return "vmm-task needs runc or crun (apt install runc)";
}

absl::StatusOr<std::unique_ptr<AgentProcess>> AgentProcess::Start(AgentProcessOptions o) {
  std::unique_ptr<AgentProcess> a(new AgentProcess());
  std::vector<std::string> argv = o.wrapper;
  argv.insert(argv.end(), {VmmTaskPath(), "--init", o.init, "--state-dir", a->state_dir(),
                           "--log-level", "debug"});
  if (o.listen_unix) argv.insert(argv.end(), {"--listen", "unix:" + a->socket_path()});
  argv.insert(argv.end(), o.extra_args.begin(), o.extra_args.end());
  UniqueFd log(::open(a->dir_.Sub("agent.log").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  if (!log) return ErrnoStatus(errno, "open agent.log");
  SpawnOptions so;
  so.stdout_fd = log.get();
  so.stderr_fd = log.get();
  so.inherit_fds = o.inherit_fds;
  ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(argv, so));
  a->child_.emplace(std::move(child));
  if (!o.listen_unix) return a;
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (true) {
    auto c = ttrpc::Client::Connect(a->socket_path());
    if (c.ok()) {
      a->client_ = std::move(*c);
      return a;
    }
    if (a->child_->WaitFor(std::chrono::milliseconds(0)).ok()) {
      return absl::FailedPreconditionError("vmm-task exited at start:\n" + a->Log());
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError("vmm-task did not listen in 10 s:\n" + a->Log());
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

AgentProcess::~AgentProcess() {
  client_.reset();
  if (child_ && !child_->reaped()) (void)Stop(absl::Seconds(10));
}

absl::StatusOr<pid_t> AgentProcess::AgentPid() const {
  pid_t top = child_->pid();
  auto comm = ReadSmallFile(absl::StrFormat("/proc/%d/comm", top), 256);
  if (comm.ok() && absl::StartsWith(*comm, "vmm-task")) return top;
  // A wrapper (unshare --fork) runs the agent as its only child.
  auto children = ReadSmallFile(absl::StrFormat("/proc/%d/task/%d/children", top, top), 4096);
  if (!children.ok()) return children.status();
  std::vector<std::string> pids = absl::StrSplit(*children, ' ', absl::SkipEmpty());
  pid_t pid = 0;
  if (pids.empty() || !absl::SimpleAtoi(pids[0], &pid)) {
    return absl::NotFoundError(absl::StrFormat("no agent under wrapper pid %d", top));
  }
  return pid;
}

absl::StatusOr<int> AgentProcess::Stop(absl::Duration timeout) {
  if (client_) (void)client_->Close();
  if (!child_->reaped()) {
    ASSIGN_OR_RETURN(pid_t pid, AgentPid());
    ::kill(pid, SIGTERM);
  }
  auto st = child_->WaitFor(absl::ToChronoMilliseconds(timeout));
  if (!st.ok()) {
    (void)child_->Signal(SIGKILL);
    (void)child_->Wait();
    return Annotate(st.status(), "vmm-task did not stop:\n" + Log());
  }
  return ExitCodeFromWaitStatus(*st);
}

std::string AgentProcess::Log() const {
  auto text = ReadSmallFile(dir_.Sub("agent.log"), 8 << 20);
  return text.ok() ? *text : std::string(text.status().message());
}

}  // namespace kuasar::guest::testing
