#include "runtime/shim/shim_launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "runtime/base/unique_fd.h"

namespace kuasar::shim {
namespace {

absl::Status Errno(const char* what) {
  return absl::InternalError(absl::StrFormat("%s: %s", what, strerror(errno)));
}

}  // namespace

absl::Status LaunchShimDaemon(const ShimArgs& args, const std::string& log_path,
                              absl::Duration timeout) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return Errno("pipe2");
  UniqueFd rd(p[0]), wr(p[1]);
  int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log < 0) return Errno(absl::StrFormat("open %s", log_path).c_str());
  UniqueFd log_fd(log);
  // Our own path as argv[0], so tools (and the benchmark) see the shim's name.
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return Errno("readlink /proc/self/exe");
  self[n] = '\0';
  // argv before fork: nothing but async-signal-safe calls after it.
  std::vector<std::string> argv = {self, "-namespace", args.ns, "-address",
                                   args.address, "-id", args.id, "-bundle", args.bundle,
                                   "-ready-fd", "3"};
  if (args.debug) argv.push_back("-debug");
  argv.push_back("serve");
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  pid_t child = fork();
  if (child < 0) return Errno("fork");
  if (child == 0) {
    setsid();
    if (fork() != 0) _exit(0);  // the daemon is reparented, never our child
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(log_fd.get(), 1);
    dup2(log_fd.get(), 2);
    dup2(wr.get(), 3);  // dup2 clears FD_CLOEXEC on the copy
    if (chdir("/") != 0) _exit(127);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  int status;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  wr.Reset();
  std::string msg;
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0) return absl::DeadlineExceededError("the shim daemon did not report readiness");
    pollfd pfd{rd.get(), POLLIN, 0};
    int n = poll(&pfd, 1, ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("poll");
    char buf[512];
    ssize_t r = read(rd.get(), buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    msg.append(buf, static_cast<size_t>(r));
    // One line; VMMs the daemon started may hold copies of the pipe, so no EOF to wait for.
    if (msg.find('\n') != std::string::npos) break;
  }
  if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
  if (msg == "ok") return absl::OkStatus();
  if (msg.empty()) {
    return absl::InternalError(absl::StrFormat("the shim daemon exited before it was ready; see %s",
                                               log_path));
  }
  return absl::UnavailableError(msg);
}

void KeepReadyFdPrivate(int ready_fd) {
  if (ready_fd >= 0) fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
}

void ReportReady(int ready_fd, const absl::Status& status) {
  if (ready_fd < 0) return;
  std::string msg = status.ok() ? "ok" : std::string(status.message());
  for (char& c : msg) c = c == '\n' ? ' ' : c;
  msg += '\n';
  (void)!write(ready_fd, msg.data(), msg.size());
  close(ready_fd);
}

}  // namespace kuasar::shim
