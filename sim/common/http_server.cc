#include "sim/common/http_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <optional>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"
#include "sim/common/byte_pump.h"

namespace kuasar::sim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Local = asio::local::stream_protocol;

std::string PathOf(std::string_view target) {
  return std::string(target.substr(0, target.find('?')));
}

struct HttpServer::Session : std::enable_shared_from_this<Session> {
  Session(HttpServer* s, Local::socket sock) : server(s), socket(std::move(sock)) {}

  void Read() {
    parser.emplace();
    parser->body_limit(server->options_.body_limit);
    parser->header_limit(16 * 1024);
    http::async_read(
        socket, buffer, *parser,
        [self = shared_from_this(), alive = server->alive_](beast::error_code ec, size_t) {
          if (*alive) self->OnRead(ec);
        });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      Close();
      return;
    }
    if (ec == http::error::body_limit) {
      Reply(server->options_.too_large(server->options_.body_limit), false);
      return;
    }
    if (ec) {
      Reply(server->options_.bad_request(ec.message()), false);
      return;
    }
    http::request<http::string_body> msg = parser->release();
    RestRequest req{std::string(msg.method_string()),
                    PathOf(std::string_view(msg.target().data(), msg.target().size())),
                    std::move(msg.body())};
    bool keep = msg.keep_alive();
    server->handler_->Handle(
        std::move(req), [self = shared_from_this(), alive = server->alive_, keep](RestReply reply) {
          if (*alive) self->Reply(std::move(reply), keep);
        });
  }

  void Reply(RestReply reply, bool keep) {
    response = {};
    response.version(11);
    response.result(static_cast<unsigned>(reply.status));
    response.set(http::field::server, server->options_.server_name);
    if (!reply.body.empty()) {
      response.set(http::field::content_type, "application/json");
      response.body() = std::move(reply.body);
    }
    response.keep_alive(keep);
    response.prepare_payload();
    after_sent = std::move(reply.after_sent);
    http::async_write(
        socket, response,
        [self = shared_from_this(), alive = server->alive_, keep](beast::error_code ec, size_t) {
          if (!*alive) return;
          auto after = std::move(self->after_sent);
          if (ec || !keep) {
            self->Close();
          } else {
            self->Read();
          }
          if (after) after();
        });
  }

  void Close() {
    beast::error_code ec;
    socket.shutdown(Local::socket::shutdown_both, ec);
    socket.close(ec);
    server->sessions_.erase(shared_from_this());
  }

  HttpServer* server;
  Local::socket socket;
  beast::flat_buffer buffer;
  std::optional<http::request_parser<http::string_body>> parser;
  http::response<http::string_body> response;
  std::function<void()> after_sent;
};

HttpServer::HttpServer(asio::io_context& io, std::string path, RestHandler* handler,
                       HttpServerOptions options)
    : path_(std::move(path)), handler_(handler), options_(std::move(options)), acceptor_(io) {
  if (!options_.bad_request) {
    options_.bad_request = [](std::string_view) { return RestReply{400, "", nullptr}; };
  }
  if (!options_.too_large) {
    options_.too_large = [](size_t) { return RestReply{413, "", nullptr}; };
  }
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Listen(asio::io_context& io,
                                                               const std::string& path,
                                                               RestHandler* handler,
                                                               HttpServerOptions options) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(absl::StrFormat("API socket path too long: %s", path));
  }
  if (options.replace_existing) ::unlink(path.c_str());
  std::unique_ptr<HttpServer> s(new HttpServer(io, path, handler, std::move(options)));
  boost::system::error_code ec;
  s->acceptor_.open(Local(), ec);
  if (!ec) s->acceptor_.bind(Local::endpoint(path), ec);
  if (ec) return ErrnoStatus(ec.value(), "bind API socket", path);
  ::chmod(path.c_str(), 0600);
  s->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return ErrnoStatus(ec.value(), "listen", path);
  s->Accept();
  return s;
}

HttpServer::~HttpServer() {
  *alive_ = false;
  boost::system::error_code ec;
  acceptor_.close(ec);
  for (auto& s : sessions_) s->socket.close(ec);
  sessions_.clear();
  ::unlink(path_.c_str());
}

void HttpServer::Accept() {
  acceptor_.async_accept([this, alive = alive_](boost::system::error_code ec, Local::socket s) {
    if (!*alive || ec == asio::error::operation_aborted) return;
    if (!ec) {
      auto session = std::make_shared<Session>(this, std::move(s));
      sessions_.insert(session);
      session->Read();
    }
    Accept();
  });
}

absl::StatusOr<RestRequest> ParseHttpRequest(std::string_view bytes, size_t body_limit) {
  http::request_parser<http::string_body> parser;
  parser.body_limit(body_limit);
  parser.header_limit(16 * 1024);
  parser.eager(true);
  beast::error_code ec;
  size_t used = parser.put(asio::buffer(bytes.data(), bytes.size()), ec);
  (void)used;
  if (!ec && !parser.is_done()) {
    parser.put_eof(ec);
  }
  if (ec) return absl::InvalidArgumentError(ec.message());
  if (!parser.is_done()) return absl::InvalidArgumentError("incomplete request");
  http::request<http::string_body> msg = parser.release();
  return RestRequest{std::string(msg.method_string()),
                     PathOf(std::string_view(msg.target().data(), msg.target().size())),
                     std::move(msg.body())};
}

}  // namespace kuasar::sim
