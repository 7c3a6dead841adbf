#include "sim/testing/rest_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "runtime/base/status_macros.h"

namespace kuasar::sim::testing {

namespace asio = boost::asio;
namespace http = boost::beast::http;

absl::StatusOr<HttpResult> HttpCall(const std::string& socket, const std::string& method,
                                    const std::string& path, const std::string& body) {
  asio::io_context io;
  asio::local::stream_protocol::socket s(io);
  boost::system::error_code ec;
  s.connect(asio::local::stream_protocol::endpoint(socket), ec);
  if (ec) return ErrnoStatus(ec.value(), "connect", socket);
  http::request<http::string_body> req(http::string_to_verb(method), path, 11);
  req.set(http::field::host, "localhost");
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  http::write(s, req, ec);
  if (ec) return absl::UnavailableError("write: " + ec.message());
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res, ec);
  if (ec) return absl::UnavailableError("read: " + ec.message());
  HttpResult out;
  out.status = static_cast<int>(res.result_int());
  out.body = res.body();
  out.server = std::string(res[http::field::server]);
  return out;
}

absl::StatusOr<UniqueFd> ConnectUnix(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return absl::InvalidArgumentError("path too long");
  path.copy(addr.sun_path, path.size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, "connect", path);
  }
  return fd;
}

std::string ReadSome(int fd, int timeout_ms, bool* eof) {
  if (eof) *eof = false;
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return "";
  char buf[65536];
  ssize_t n = ::read(fd, buf, sizeof(buf));
  if (n <= 0) {
    if (eof) *eof = true;
    return "";
  }
  return std::string(buf, static_cast<size_t>(n));
}

std::string RoundTrip(int fd, const std::string& msg, size_t expect, int timeout_ms) {
  if (::write(fd, msg.data(), msg.size()) != static_cast<ssize_t>(msg.size())) return "";
  std::string got;
  while (got.size() < expect) {
    bool eof = false;
    std::string more = ReadSome(fd, timeout_ms, &eof);
    if (more.empty()) break;
    got += more;
  }
  return got;
}

absl::StatusOr<UniqueFd> HybridConnect(const std::string& path, uint32_t port, std::string* reply) {
  ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnix(path));
  std::string req = "CONNECT " + std::to_string(port) + "\n";
  if (::write(fd.get(), req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    return ErrnoStatus(errno, "write CONNECT");
  }
  reply->clear();
  // Byte by byte: nothing after the newline belongs to the handshake.
  while (true) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 3000) <= 0) break;
    char c;
    if (::read(fd.get(), &c, 1) != 1) break;
    if (c == '\n') break;
    reply->push_back(c);
  }
  return fd;
}

}  // namespace kuasar::sim::testing
