#include "runtime/ttrpc/unix_listener.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>

#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "runtime/base/socket_path.h"
#include "runtime/base/status_macros.h"

#include <spdlog/spdlog.h>

namespace kuasar::ttrpc {

absl::StatusOr<std::shared_ptr<UnixListener>> UnixListener::Create(boost::asio::io_context& io,
                                                                   const std::string& path,
                                                                   unsigned mode,
                                                                   AcceptFn on_accept) {
  RETURN_IF_ERROR(PrepareSocketPath(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, "bind", path);
  }
  // Mode before listen(): nobody can connect until the permissions are final.
  if (::chmod(path.c_str(), mode) != 0) {
    absl::Status st = ErrnoStatus(errno, "chmod", path);
    ::unlink(path.c_str());
    return st;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || ::listen(fd.get(), SOMAXCONN) != 0) {
    absl::Status err = ErrnoStatus(errno, "listen", path);
    ::unlink(path.c_str());
    return err;
  }
  auto listener =
      std::make_shared<UnixListener>(io, path, st.st_dev, st.st_ino, std::move(on_accept));
  boost::system::error_code ec;
  listener->socket_.assign(fd.get(), ec);
  if (ec) {
    ::unlink(path.c_str());
    return absl::InternalError(absl::StrFormat("ttrpc: register listener %s: %s", path, ec.message()));
  }
  fd.Release();
  return listener;
}

UnixListener::UnixListener(boost::asio::io_context& io, std::string path, dev_t dev, ino_t ino,
                           AcceptFn on_accept)
    : strand_(boost::asio::make_strand(io)),
      socket_(strand_),
      backoff_(strand_),
      path_(std::move(path)),
      dev_(dev),
      ino_(ino),
      on_accept_(std::move(on_accept)) {}

void UnixListener::Start() {
  boost::asio::post(strand_, [self = shared_from_this()] { self->Arm(); });
}

void UnixListener::Arm() {
  if (closed_) return;
  socket_.async_wait(boost::asio::posix::descriptor_base::wait_read,
                     boost::asio::bind_executor(
                         strand_, [self = shared_from_this()](const boost::system::error_code& ec) {
                           self->OnReadable(ec);
                         }));
}

void UnixListener::OnReadable(const boost::system::error_code& ec) {
  if (closed_ || ec) return;
  for (;;) {
    int fd = ::accept4(socket_.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      on_accept_(UniqueFd(fd));
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    // Out of fds or memory: back off instead of spinning (Go ttrpc does the same).
    spdlog::error("ttrpc server: accept failed path={} error=\"{}\"; retrying in 100 ms", path_,
                  std::strerror(errno));
    backoff_.expires_after(std::chrono::milliseconds(100));
    backoff_.async_wait(boost::asio::bind_executor(
        strand_, [self = shared_from_this()](const boost::system::error_code&) { self->Arm(); }));
    return;
  }
  Arm();
}

void UnixListener::Close() {
  boost::asio::post(strand_, [self = shared_from_this()] {
    if (self->closed_) return;
    self->closed_ = true;
    boost::system::error_code ignored;
    self->socket_.close(ignored);
    self->backoff_.cancel();
  });
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
    ::unlink(path_.c_str());
  }
}

}  // namespace kuasar::ttrpc
