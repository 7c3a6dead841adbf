#include "sim/common/daemonize.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/status_macros.h"

namespace kuasar::sim {
namespace {
int g_ready_fd = -1;
}  // namespace

absl::Status Daemonize() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid > 0) {
    ::close(p[1]);
    unsigned char code = 1;
    ssize_t n;
    do {
      n = ::read(p[0], &code, 1);
    } while (n < 0 && errno == EINTR);
    // EOF without a byte: the child died before it was ready.
    ::_exit(n == 1 ? code : 1);
  }
  ::close(p[0]);
  g_ready_fd = p[1];
  ::setsid();
  return absl::OkStatus();
}

void DaemonReady(bool keep_stderr) {
  if (g_ready_fd < 0) return;
  unsigned char ok = 0;
  (void)!::write(g_ready_fd, &ok, 1);
  ::close(g_ready_fd);
  g_ready_fd = -1;
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull >= 0) {
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    if (!keep_stderr) ::dup2(devnull, 2);
    ::close(devnull);
  }
}

void DaemonFailed(int code) {
  if (g_ready_fd < 0) return;
  unsigned char c = static_cast<unsigned char>(code == 0 ? 1 : code);
  (void)!::write(g_ready_fd, &c, 1);
  ::close(g_ready_fd);
  g_ready_fd = -1;
}

absl::Status WritePidFile(const std::string& path) {
  return WriteFileAtomically(path, absl::StrCat(::getpid(), "\n"), 0644);
}

}  // namespace kuasar::sim
