// Test clients for the simulator's sockets: one HTTP/1.1 call over a unix socket (Beast,
// synchronous), a raw unix connect, and the host side of hybrid vsock. Blocking; any
// thread.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/base/unique_fd.h"

namespace kuasar::sim::testing {

struct HttpResult {
  int status = 0;
  std::string body;
  std::string server;  // the Server header
  nlohmann::json Json() const { return nlohmann::json::parse(body, nullptr, false); }
};

absl::StatusOr<HttpResult> HttpCall(const std::string& socket, const std::string& method,
                                    const std::string& path, const std::string& body = "");

absl::StatusOr<UniqueFd> ConnectUnix(const std::string& path);

// Connects to a hybrid vsock socket and asks for `port`; *reply gets the VMM's answer line
// ("OK 1073741824") or "" when the VMM closed the connection.
absl::StatusOr<UniqueFd> HybridConnect(const std::string& path, uint32_t port, std::string* reply);

// Writes `msg` and reads what comes back within `timeout_ms` (until `expect` bytes or EOF).
std::string RoundTrip(int fd, const std::string& msg, size_t expect, int timeout_ms = 3000);

// Reads within `timeout_ms`; "" on EOF or timeout. *eof tells which.
std::string ReadSome(int fd, int timeout_ms, bool* eof = nullptr);

}  // namespace kuasar::sim::testing
