#include "sim/common/hybrid_vsock.h"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"

namespace kuasar::sim {

namespace asio = boost::asio;
using Local = asio::local::stream_protocol;

std::optional<uint32_t> ParseConnectLine(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  constexpr std::string_view kPrefix = "CONNECT ";
  if (line.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  uint32_t port = 0;
  std::string_view digits = line.substr(kPrefix.size());
  if (digits.empty() || digits.size() > 10 ||
      digits.find_first_not_of("0123456789") != std::string_view::npos ||
      !absl::SimpleAtoi(std::string(digits), &port)) {
    return std::nullopt;
  }
  return port;
}

HybridVsock::HybridVsock(asio::io_context& io, std::string path, PortPath port_path)
    : io_(io), path_(std::move(path)), port_path_(std::move(port_path)), acceptor_(io) {}

absl::StatusOr<std::unique_ptr<HybridVsock>> HybridVsock::Listen(asio::io_context& io,
                                                                 const std::string& path,
                                                                 PortPath port_path,
                                                                 bool replace_existing) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(absl::StrFormat("vsock socket path too long: %s", path));
  }
  if (replace_existing) ::unlink(path.c_str());
  std::unique_ptr<HybridVsock> v(new HybridVsock(io, path, std::move(port_path)));
  boost::system::error_code ec;
  v->acceptor_.open(Local(), ec);
  if (!ec) v->acceptor_.bind(Local::endpoint(path), ec);
  if (ec) return ErrnoStatus(ec.value(), "bind vsock socket", path);
  ::chmod(path.c_str(), 0600);
  v->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return ErrnoStatus(ec.value(), "listen", path);
  v->Accept();
  return v;
}

HybridVsock::~HybridVsock() {
  *alive_ = false;
  boost::system::error_code ec;
  acceptor_.close(ec);
  for (auto& s : pending_) s->close(ec);
  auto pumps = std::move(pumps_);
  for (auto& p : pumps) p->Close();
  ::unlink(path_.c_str());
}

void HybridVsock::Accept() {
  acceptor_.async_accept([this, alive = alive_](boost::system::error_code ec, Local::socket s) {
    if (!*alive || ec == asio::error::operation_aborted) return;
    if (!ec) Handshake(std::make_shared<UnixSocket>(std::move(s)));
    Accept();
  });
}

void HybridVsock::Handshake(std::shared_ptr<UnixSocket> host) {
  pending_.insert(host);
  auto buf = std::make_shared<asio::streambuf>(64);  // a CONNECT line fits in 64 bytes
  asio::async_read_until(*host, *buf, '\n', [this, alive = alive_, host, buf](auto ec, size_t n) {
    if (!*alive) return;
    pending_.erase(host);
    if (ec) return;  // EOF, or no newline within 64 bytes: drop it, as the VMM does
    std::string line(asio::buffers_begin(buf->data()), asio::buffers_begin(buf->data()) + n - 1);
    buf->consume(n);
    std::optional<uint32_t> port = ParseConnectLine(line);
    if (!port) {
      spdlog::debug("op=vsock-connect result=malformed line=\"{}\"", line);
      return;
    }
    auto guest = std::make_shared<UnixSocket>(io_);
    pending_.insert(host);
    guest->async_connect(Local::endpoint(port_path_(*port)), [this, alive, host, guest, buf,
                                                              port](auto cec) {
      if (!*alive) return;
      pending_.erase(host);
      if (cec) {
        // Nothing listens on that guest port (or the guest has not booted yet): the
        // guest resets the connection, and the VMM closes the host side.
        spdlog::debug("op=vsock-connect port={} result=refused", *port);
        return;
      }
      auto reply = std::make_shared<std::string>(absl::StrFormat("OK %d\n", next_host_port_++));
      // Bytes the client sent right after its CONNECT line go to the guest first.
      auto early = std::make_shared<std::string>(asio::buffers_begin(buf->data()),
                                                 asio::buffers_end(buf->data()));
      pending_.insert(host);
      asio::async_write(
          *host, asio::buffer(*reply), [this, alive, host, guest, reply, early](auto wec, size_t) {
            if (!*alive) return;
            pending_.erase(host);
            if (wec) return;
            auto start = [this, alive, host, guest] {
              auto holder = std::make_shared<std::weak_ptr<BytePump>>();
              auto pump = BytePump::Start(host, guest, [this, alive, holder] {
                if (!*alive) return;
                if (auto p = holder->lock()) pumps_.erase(p);
              });
              *holder = pump;
              if (!pump->closed()) pumps_.insert(pump);
              pump->SetPaused(paused_);
            };
            if (early->empty()) {
              start();
              return;
            }
            asio::async_write(*guest, asio::buffer(*early), [alive, early, start](auto e2, size_t) {
              if (*alive && !e2) start();
            });
          });
    });
  });
}

void HybridVsock::DropAll() {
  auto pumps = std::move(pumps_);
  pumps_.clear();
  for (auto& p : pumps) p->Close();
}

void HybridVsock::SetPaused(bool paused) {
  paused_ = paused;
  for (auto& p : pumps_) p->SetPaused(paused);
}

}  // namespace kuasar::sim
