#include "sim/common/qmp_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/write.hpp>
#include <deque>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"

namespace kuasar::sim {

namespace asio = boost::asio;
using Local = asio::local::stream_protocol;

struct QmpServer::Conn : std::enable_shared_from_this<Conn> {
  Conn(QmpServer* s, Local::socket sock) : server(s), socket(std::move(sock)) {}

  void Start() {
    std::weak_ptr<Conn> weak = shared_from_this();
    session = std::make_unique<QmpSession>(
        server->dialect_, server->greeting_, server->dispatch_,
        [weak](std::string bytes) {
          if (auto c = weak.lock()) c->Write(std::move(bytes));
        },
        [server = server, alive = server->alive_](const OJson& ev) {
          if (*alive) server->Broadcast(ev);
        });
    session->Start();
    Read();
  }

  void Read() {
    socket.async_wait(Local::socket::wait_read,
                      [self = shared_from_this(), alive = server->alive_](auto ec) {
                        if (!*alive || ec) return;
                        self->OnReadable();
                      });
  }

  void OnReadable() {
    char buf[16 * 1024];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 16)];
    iovec iov{buf, sizeof(buf)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = ::recvmsg(socket.native_handle(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      Read();
      return;
    }
    if (n <= 0) {
      Close();
      return;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const int* fds = reinterpret_cast<const int*>(CMSG_DATA(c));
      for (size_t i = 0; i < count; ++i) session->PushFd(UniqueFd(fds[i]));
    }
    auto self = shared_from_this();  // Feed may run a command that ends this connection
    session->Feed(std::string_view(buf, static_cast<size_t>(n)));
    if (!closed) Read();
  }

  void Write(std::string bytes) {
    if (closed) return;
    if (out.empty()) {
      // Write now when the socket takes it: a reply or event written just before the VMM
      // exits (quit, a guest shutdown) must not wait for another turn of the loop.
      ssize_t n =
          ::send(socket.native_handle(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n == static_cast<ssize_t>(bytes.size())) return;
      if (n > 0) bytes.erase(0, static_cast<size_t>(n));
    }
    out.push_back(std::move(bytes));
    if (out.size() == 1) Flush();
  }

  void Flush() {
    asio::async_write(socket, asio::buffer(out.front()),
                      [self = shared_from_this(), alive = server->alive_](auto ec, size_t) {
                        if (!*alive) return;
                        self->out.pop_front();
                        if (ec) {
                          self->Close();
                          return;
                        }
                        if (!self->out.empty()) self->Flush();
                      });
  }

  void Close() {
    if (closed) return;
    closed = true;
    boost::system::error_code ec;
    socket.close(ec);
    server->conns_.erase(shared_from_this());
  }

  QmpServer* server;
  Local::socket socket;
  std::unique_ptr<QmpSession> session;
  std::deque<std::string> out;
  bool closed = false;
};

QmpServer::QmpServer(asio::io_context& io, std::string path, QmpDialect dialect, OJson greeting,
                     QmpSession::Dispatch dispatch)
    : path_(std::move(path)),
      dialect_(dialect),
      greeting_(std::move(greeting)),
      dispatch_(std::move(dispatch)),
      acceptor_(io) {}

absl::StatusOr<std::unique_ptr<QmpServer>> QmpServer::Listen(asio::io_context& io,
                                                             const std::string& path,
                                                             QmpDialect dialect, OJson greeting,
                                                             QmpSession::Dispatch dispatch,
                                                             bool replace_existing) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(absl::StrFormat("QMP socket path too long: %s", path));
  }
  if (replace_existing) ::unlink(path.c_str());
  std::unique_ptr<QmpServer> s(
      new QmpServer(io, path, dialect, std::move(greeting), std::move(dispatch)));
  boost::system::error_code ec;
  s->acceptor_.open(Local(), ec);
  if (!ec) s->acceptor_.bind(Local::endpoint(path), ec);
  if (ec) return ErrnoStatus(ec.value(), "bind QMP socket", path);
  ::chmod(path.c_str(), 0600);
  s->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return ErrnoStatus(ec.value(), "listen", path);
  s->Accept();
  return s;
}

QmpServer::~QmpServer() {
  *alive_ = false;
  boost::system::error_code ec;
  acceptor_.close(ec);
  for (auto& c : conns_) {
    c->closed = true;
    c->socket.close(ec);
  }
  conns_.clear();
  ::unlink(path_.c_str());
}

void QmpServer::Accept() {
  acceptor_.async_accept([this, alive = alive_](boost::system::error_code ec, Local::socket s) {
    if (!*alive || ec == asio::error::operation_aborted) return;
    if (!ec) {
      auto conn = std::make_shared<Conn>(this, std::move(s));
      conns_.insert(conn);
      conn->Start();
      if (on_first_) {
        auto fn = std::move(on_first_);
        on_first_ = nullptr;
        fn();
      }
    }
    Accept();
  });
}

void QmpServer::Broadcast(const OJson& event) {
  auto conns = conns_;  // a write error may close (erase) one
  for (auto& c : conns) {
    if (!c->closed && c->session->ready()) c->session->SendEvent(event);
  }
}

}  // namespace kuasar::sim
