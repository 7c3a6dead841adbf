#include "sim/common/serial_channel.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/write.hpp>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"

namespace kuasar::sim {

namespace asio = boost::asio;
using Local = asio::local::stream_protocol;

SerialChannel::SerialChannel(asio::io_context& io, std::string path)
    : io_(io), path_(std::move(path)), acceptor_(io), hup_timer_(io) {}

absl::StatusOr<std::unique_ptr<SerialChannel>> SerialChannel::Listen(asio::io_context& io,
                                                                     const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(absl::StrFormat("chardev socket path too long: %s", path));
  }
  ::unlink(path.c_str());
  std::unique_ptr<SerialChannel> c(new SerialChannel(io, path));
  boost::system::error_code ec;
  c->acceptor_.open(Local(), ec);
  if (!ec) c->acceptor_.bind(Local::endpoint(path), ec);
  if (ec) return ErrnoStatus(ec.value(), "bind chardev socket", path);
  ::chmod(path.c_str(), 0600);
  c->acceptor_.listen(1, ec);
  if (ec) return ErrnoStatus(ec.value(), "listen", path);
  c->Accept();
  return c;
}

SerialChannel::~SerialChannel() {
  *alive_ = false;
  on_open_ = nullptr;
  boost::system::error_code ec;
  acceptor_.close(ec);
  hup_timer_.cancel();
  if (host_) host_->close(ec);
  if (guest_) guest_->close(ec);
  ::unlink(path_.c_str());
}

bool SerialChannel::DropHostIfHungUp() {
  if (!host_) return false;
  // POLLHUP: the peer closed the connection (a half-close, POLLRDHUP, still listens).
  pollfd p{host_->native_handle(), 0, 0};
  if (::poll(&p, 1, 0) <= 0 || (p.revents & (POLLHUP | POLLERR)) == 0) return false;
  DropHost();
  return true;
}

// Polled rather than awaited: the socket may hold unread bytes, so it stays readable.
void SerialChannel::WatchHostHangUp() {
  if (hup_watching_ || !host_ || (guest_ && !paused_)) return;
  hup_watching_ = true;
  hup_timer_.expires_after(std::chrono::milliseconds(50));
  hup_timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (!*alive) return;
    hup_watching_ = false;
    if (ec) return;
    if (!DropHostIfHungUp()) WatchHostHangUp();
  });
}

void SerialChannel::Accept() {
  if (accepting_ || host_) return;
  accepting_ = true;
  acceptor_.async_accept([this, alive = alive_](boost::system::error_code ec, Local::socket s) {
    if (!*alive) return;
    accepting_ = false;
    if (ec == asio::error::operation_aborted) return;
    if (ec) {
      Accept();
      return;
    }
    host_ = std::make_shared<UnixSocket>(std::move(s));
    host_busy_ = false;
    KickHost();
    KickGuest();
    WatchHostHangUp();
  });
}

void SerialChannel::DropHost() {
  if (!host_) return;
  boost::system::error_code ec;
  host_->close(ec);
  host_.reset();
  host_busy_ = false;
  Accept();
}

absl::StatusOr<UniqueFd> SerialChannel::AttachGuest() {
  DetachGuest();
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return ErrnoStatus(errno, "socketpair");
  }
  guest_ = std::make_shared<UnixSocket>(io_, Local(), sv[0]);
  guest_busy_ = false;
  DropHostIfHungUp();  // (this accepts the next waiting host, if any)
  KickHost();
  KickGuest();
  if (on_open_) on_open_(true);
  return UniqueFd(sv[1]);
}

bool SerialChannel::CloseGuest() {
  if (!guest_) return false;
  boost::system::error_code ec;
  guest_->close(ec);
  guest_.reset();
  guest_busy_ = false;
  return true;
}

void SerialChannel::DetachGuest() {
  bool was_open = CloseGuest();
  WatchHostHangUp();
  if (was_open && on_open_) on_open_(false);
}

void SerialChannel::DropBoth() {
  DetachGuest();
  DropHost();
}

void SerialChannel::SetPaused(bool paused) {
  paused_ = paused;
  if (!paused) DropHostIfHungUp();
  KickHost();
  KickGuest();
  WatchHostHangUp();
}

// host -> guest: only while a guest is attached and running; otherwise the bytes wait.
void SerialChannel::KickHost() {
  if (!host_ || !guest_ || paused_ || host_busy_) return;
  host_busy_ = true;
  auto h = host_;
  auto buf = std::make_shared<Buffer>();  // per read: a stale write may still hold the last
  h->async_read_some(asio::buffer(*buf), [this, alive = alive_, h, buf](auto ec, size_t n) {
    if (!*alive || h != host_) return;  // a stale connection
    if (ec) {
      DropHost();
      return;
    }
    if (!guest_) {
      host_busy_ = false;  // guest gone mid-read: lost with it (QEMU loses its queue too)
      WatchHostHangUp();
      return;
    }
    auto g = guest_;
    asio::async_write(*g, asio::buffer(buf->data(), n), [this, alive, h, g, buf](auto wec, size_t) {
      if (!*alive || h != host_) return;
      host_busy_ = false;
      if (wec && g == guest_) {
        DetachGuest();
        return;
      }
      KickHost();
    });
  });
}

// guest -> host: read only while a host listens; a read in flight when the host leaves
// delivers to the next host, or is dropped if none.
void SerialChannel::KickGuest() {
  if (!guest_ || !host_ || paused_ || guest_busy_) return;
  guest_busy_ = true;
  auto g = guest_;
  auto buf = std::make_shared<Buffer>();
  g->async_read_some(asio::buffer(*buf), [this, alive = alive_, g, buf](auto ec, size_t n) {
    if (!*alive || g != guest_) return;
    if (ec) {
      // The agent closed its end: the port is closed until the guest reattaches; the
      // host connection stays.
      DetachGuest();
      return;
    }
    if (!host_) {
      guest_busy_ = false;
      return;
    }
    auto h = host_;
    asio::async_write(*h, asio::buffer(buf->data(), n), [this, alive, g, h, buf](auto wec, size_t) {
      if (!*alive || g != guest_) return;
      guest_busy_ = false;
      if (wec && h == host_) DropHost();
      KickGuest();
    });
  });
}

}  // namespace kuasar::sim
