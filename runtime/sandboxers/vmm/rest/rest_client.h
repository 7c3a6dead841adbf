// RestClient: the small HTTP/1.1 client Cloud Hypervisor's and Firecracker's drivers talk
// to their VMM's API socket with (a unix socket; JSON bodies; one request per connection,
// as both servers handle them). Built on Boost.Beast with a private io_context per call,
// so every call has its own deadline and nothing is shared. Thread-safe; blocking, so
// never call it on the daemon's io thread.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kuasar::vmm {

struct RestResponse {
  unsigned status = 0;  // 200, 204, 400, ...
  std::string body;
};

class RestClient {
 public:
  explicit RestClient(std::string socket_path, absl::Duration default_timeout = absl::Seconds(10))
      : socket_path_(std::move(socket_path)), default_timeout_(default_timeout) {}

  // One exchange. Errors are the transport's only: UNAVAILABLE (no listener, connection
  // closed), DEADLINE_EXCEEDED (`timeout`, connect to last byte), INTERNAL (bad HTTP).
  // A zero `timeout` means the default.
  absl::StatusOr<RestResponse> Send(std::string_view method, std::string_view target,
                                    const std::optional<nlohmann::json>& body,
                                    absl::Duration timeout = absl::ZeroDuration()) const;

  // Send, then a non-2xx answer as a status (HttpErrorToStatus); a 2xx body parsed as
  // JSON (null when empty; INTERNAL if it does not parse).
  absl::StatusOr<nlohmann::json> Call(std::string_view method, std::string_view target,
                                      const std::optional<nlohmann::json>& body = std::nullopt,
                                      absl::Duration timeout = absl::ZeroDuration()) const;

  // Retries GET `target` (a VMM creates its socket while starting) until it answers 2xx.
  // `keep_trying` runs between attempts; an error from it ends the wait with that error.
  absl::Status WaitUntilAnswering(std::string_view target, absl::Time deadline,
                                  const std::function<absl::Status()>& keep_trying = nullptr) const;

  const std::string& socket_path() const { return socket_path_; }

 private:
  std::string socket_path_;
  absl::Duration default_timeout_;
};

// The error text of a VMM's error body: Cloud Hypervisor's JSON array of the error chain
// (joined with ": "), Firecracker's {"fault_message": ...}, {"error": ...}, or the raw
// text (trimmed, at most 512 bytes).
std::string ErrorMessageFromBody(std::string_view body);

// A non-2xx answer as a status naming the request: 400 -> INVALID_ARGUMENT, 404 ->
// NOT_FOUND, 405 -> FAILED_PRECONDITION, 409 -> ALREADY_EXISTS, 429 -> RESOURCE_EXHAUSTED,
// 503 -> UNAVAILABLE, 501 -> UNIMPLEMENTED, other 5xx -> INTERNAL, else UNKNOWN.
absl::Status HttpErrorToStatus(std::string_view method, std::string_view target, unsigned status,
                               std::string_view body);

}  // namespace kuasar::vmm
