#include "runtime/sandboxers/vmm/rest/hybrid_vsock.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"

namespace kuasar::vmm {
namespace {

absl::StatusOr<UniqueFd> ConnectUnix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrFormat("socket path too long: %s", path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    return absl::UnavailableError(
        absl::StrFormat("connect %s: %s", path, ErrnoStatus(err, "connect").message()));
  }
  return fd;
}

// Reads the answer line byte by byte: what follows "\n" belongs to the guest's stream.
absl::StatusOr<std::string> ReadLine(int fd, absl::Time deadline) {
  std::string line;
  while (line.size() < 64) {
    int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (left <= 0) return absl::DeadlineExceededError("no answer to CONNECT in time");
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, left);
    if (ready < 0 && errno != EINTR) return ErrnoStatus(errno, "poll", "hybrid vsock");
    if (ready <= 0) continue;
    char c;
    ssize_t n = ::read(fd, &c, 1);
    if (n == 0) return absl::UnavailableError("closed without answering CONNECT");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return absl::UnavailableError(
          absl::StrFormat("read: %s", ErrnoStatus(errno, "read").message()));
    }
    if (c == '\n') return line;
    line.push_back(c);
  }
  return absl::DataLossError("answer to CONNECT too long");
}

}  // namespace

absl::StatusOr<UniqueFd> ConnectHybridVsockOnce(const std::string& path, uint32_t port,
                                                absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnix(path));
  std::string hello = absl::StrFormat("CONNECT %d\n", port);
  if (::send(fd.get(), hello.data(), hello.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(hello.size())) {
    return absl::UnavailableError(absl::StrFormat("send CONNECT to %s failed", path));
  }
  ASSIGN_OR_RETURN(std::string line, ReadLine(fd.get(), deadline));
  if (line.rfind("OK ", 0) != 0) {
    return absl::UnavailableError(
        absl::StrFormat("%s answered \"%s\" to CONNECT %d", path, line.substr(0, 64), port));
  }
  return fd;
}

absl::StatusOr<UniqueFd> DialHybridVsock(const std::string& path, uint32_t port,
                                         absl::Time deadline,
                                         const std::function<absl::Status()>& keep_trying) {
  absl::Status last = absl::UnavailableError("never tried");
  absl::Duration pause = absl::Milliseconds(2);
  while (absl::Now() < deadline) {
    auto fd =
        ConnectHybridVsockOnce(path, port, std::min(deadline - absl::Now(), absl::Seconds(5)));
    if (fd.ok()) return fd;
    // Not up yet (or a stall in the guest): retry; a bad path or answer will not heal.
    if (!absl::IsUnavailable(fd.status()) && !absl::IsDeadlineExceeded(fd.status())) return fd;
    last = fd.status();
    if (keep_trying) RETURN_IF_ERROR(keep_trying());
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(25));
  }
  return absl::DeadlineExceededError(absl::StrFormat(
      "vsock port %d behind %s did not answer in time: %s", port, path, last.message()));
}

}  // namespace kuasar::vmm
