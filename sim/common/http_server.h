// HttpServer: HTTP/1.1 over a unix socket (Boost.Beast), as Cloud Hypervisor's and
// Firecracker's API servers speak it: keep-alive, one request at a time per connection,
// JSON bodies. Each request goes to a RestHandler. One io_context thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "sim/common/rest_types.h"

namespace kuasar::sim {

struct HttpServerOptions {
  std::string server_name;       // the Server header ("Cloud Hypervisor API")
  size_t body_limit = 1 << 20;   // larger bodies get `too_large`
  bool replace_existing = true;  // unlink a leftover socket file before bind
  // Replies for requests the server itself rejects (malformed, too large).
  std::function<RestReply(std::string_view why)> bad_request;
  std::function<RestReply(size_t limit)> too_large;
};

class HttpServer {
 public:
  static absl::StatusOr<std::unique_ptr<HttpServer>> Listen(boost::asio::io_context& io,
                                                            const std::string& path,
                                                            RestHandler* handler,
                                                            HttpServerOptions options);
  ~HttpServer();  // closes the listener and every connection, unlinks the socket

  struct Session;

 private:
  HttpServer(boost::asio::io_context& io, std::string path, RestHandler* handler,
             HttpServerOptions options);
  void Accept();

  std::string path_;
  RestHandler* handler_;
  HttpServerOptions options_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::set<std::shared_ptr<Session>> sessions_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Parses one complete HTTP/1.1 request from `bytes` (no socket): for fuzzing and tests.
absl::StatusOr<RestRequest> ParseHttpRequest(std::string_view bytes, size_t body_limit);

// "/api/v1/vm.info?x=1" -> "/api/v1/vm.info".
std::string PathOf(std::string_view target);

}  // namespace kuasar::sim
