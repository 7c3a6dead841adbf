#include "runtime/sandboxers/vmm/rest/rest_client.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace kuasar::vmm {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::system::error_code;
using nlohmann::json;

// Anything but a malformed answer means the VMM is not (or no longer) there.
absl::StatusCode TransportCode(const error_code& ec) {
  const auto& http_category = http::make_error_code(http::error::end_of_stream).category();
  if (ec.category() == http_category && ec != http::error::end_of_stream) {
    return absl::StatusCode::kInternal;
  }
  return absl::StatusCode::kUnavailable;
}

}  // namespace

absl::StatusOr<RestResponse> RestClient::Send(std::string_view method, std::string_view target,
                                              const std::optional<json>& body,
                                              absl::Duration timeout) const {
  if (timeout <= absl::ZeroDuration()) timeout = default_timeout_;
  http::verb verb = http::string_to_verb({method.data(), method.size()});
  if (verb == http::verb::unknown) {
    return absl::InvalidArgumentError(absl::StrFormat("unknown HTTP method %s", method));
  }
  http::request<http::string_body> req{verb, {target.data(), target.size()}, 11};
  req.set(http::field::host, "localhost");
  req.set(http::field::accept, "application/json");
  if (body) {
    req.set(http::field::content_type, "application/json");
    req.body() = body->dump();
  }
  req.prepare_payload();

  asio::io_context io;
  asio::local::stream_protocol::socket socket(io);
  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(4 << 20);
  bool done = false;
  error_code result;
  std::string_view stage = "connect";
  socket.async_connect(asio::local::stream_protocol::endpoint(socket_path_), [&](error_code ec) {
    if (ec) {
      done = true, result = ec;
      return;
    }
    stage = "write to";
    http::async_write(socket, req, [&](error_code ec, size_t) {
      if (ec) {
        done = true, result = ec;
        return;
      }
      stage = "read from";
      // The head first, on its own: Boost 1.74's eager read of a whole response goes on
      // into the body after reporting body_limit, and its string body then reserves the
      // announced Content-Length (a 4 GB answer was a 4 GB allocation). Read apart, the
      // limit error ends the call before any body storage exists.
      http::async_read_header(socket, buffer, parser, [&](error_code ec, size_t) {
        if (ec || parser.is_done()) {
          done = true, result = ec;
          return;
        }
        http::async_read(socket, buffer, parser,
                         [&](error_code ec, size_t) { done = true, result = ec; });
      });
    });
  });
  io.run_for(absl::ToChronoMilliseconds(timeout) + std::chrono::milliseconds(1));
  if (!done) {
    error_code ignored;
    socket.close(ignored);
    io.restart();
    io.run();
    return absl::DeadlineExceededError(
        absl::StrFormat("%s %s on %s: no answer within %s (stuck at %s)", method, target,
                        socket_path_, absl::FormatDuration(timeout), stage));
  }
  if (result) {
    return absl::Status(
        TransportCode(result),
        absl::StrFormat("%s %s: %s %s: %s", method, target, stage, socket_path_, result.message()));
  }
  RestResponse response;
  response.status = parser.get().result_int();
  response.body = std::move(parser.get().body());
  return response;
}

absl::StatusOr<json> RestClient::Call(std::string_view method, std::string_view target,
                                      const std::optional<json>& body,
                                      absl::Duration timeout) const {
  absl::StatusOr<RestResponse> r = Send(method, target, body, timeout);
  if (!r.ok()) return r.status();
  if (r->status < 200 || r->status > 299) {
    return HttpErrorToStatus(method, target, r->status, r->body);
  }
  if (absl::StripAsciiWhitespace(absl::string_view(r->body)).empty()) return json(nullptr);
  json parsed = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return absl::InternalError(
        absl::StrFormat("%s %s: answer is not JSON: %.200s", method, target, r->body));
  }
  return parsed;
}

absl::Status RestClient::WaitUntilAnswering(
    std::string_view target, absl::Time deadline,
    const std::function<absl::Status()>& keep_trying) const {
  absl::Status last = absl::UnavailableError("never tried");
  absl::Duration pause = absl::Milliseconds(2);
  while (true) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    last = Call("GET", target, std::nullopt, std::min(left, absl::Seconds(2))).status();
    if (last.ok()) return last;
    if (keep_trying) {
      if (absl::Status st = keep_trying(); !st.ok()) return st;
    }
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrFormat("%s did not answer GET %s in time: %s",
                                                     socket_path_, target, last.message()));
}

std::string ErrorMessageFromBody(std::string_view body) {
  absl::string_view trimmed =
      absl::StripAsciiWhitespace(absl::string_view(body.data(), body.size()));
  json j = json::parse(trimmed.begin(), trimmed.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) {
    if (j.is_array() && !j.empty()) {
      std::vector<std::string> parts;
      for (const json& e : j) parts.push_back(e.is_string() ? e.get<std::string>() : e.dump());
      return absl::StrJoin(parts, ": ");
    }
    if (j.is_object()) {
      for (const char* key : {"fault_message", "error", "message"}) {
        if (j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
      }
    }
    if (j.is_string()) return j.get<std::string>();
  }
  std::string raw(trimmed.substr(0, 512));
  return raw.empty() ? "(no error body)" : raw;
}

absl::Status HttpErrorToStatus(std::string_view method, std::string_view target, unsigned status,
                               std::string_view body) {
  absl::StatusCode code = absl::StatusCode::kUnknown;
  switch (status) {
    case 400:
      code = absl::StatusCode::kInvalidArgument;
      break;
    case 404:
      code = absl::StatusCode::kNotFound;
      break;
    case 405:
      code = absl::StatusCode::kFailedPrecondition;
      break;
    case 409:
      code = absl::StatusCode::kAlreadyExists;
      break;
    case 429:
      code = absl::StatusCode::kResourceExhausted;
      break;
    case 501:
      code = absl::StatusCode::kUnimplemented;
      break;
    case 503:
      code = absl::StatusCode::kUnavailable;
      break;
    default:
      if (status >= 500 && status <= 599) code = absl::StatusCode::kInternal;
      break;
  }
  return absl::Status(code, absl::StrFormat("%s %s: HTTP %d: %s", method, target, status,
                                            ErrorMessageFromBody(body)));
}

}  // namespace kuasar::vmm
