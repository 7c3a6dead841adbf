// QmpClient: a blocking QMP test client: reads the greeting, sends commands, returns the
// first reply (return or error) and keeps the events that came before it. Any thread,
// one at a time.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/base/unique_fd.h"

namespace kuasar::sim::testing {

class QmpClient {
 public:
  static absl::StatusOr<QmpClient> Connect(const std::string& path);

  const nlohmann::json& greeting() const { return greeting_; }
  // Sends raw bytes (a command, or garbage) and returns the next reply.
  absl::StatusOr<nlohmann::json> SendRaw(const std::string& bytes, int timeout_ms = 5000);
  absl::StatusOr<nlohmann::json> Execute(const std::string& command,
                                         const nlohmann::json& args = nullptr,
                                         int timeout_ms = 5000);
  // Negotiates (qmp_capabilities) and fails if that errs.
  absl::Status Negotiate();
  // The next event named `name` (from those already read first).
  absl::StatusOr<nlohmann::json> WaitEvent(const std::string& name, int timeout_ms = 5000);
  // Every message read so far, in order (replies and events), as text lines.
  const std::vector<std::string>& lines() const { return lines_; }
  bool closed() const { return closed_; }
  int fd() const { return fd_.get(); }

 private:
  explicit QmpClient(UniqueFd fd) : fd_(std::move(fd)) {}
  absl::StatusOr<nlohmann::json> ReadMessage(int timeout_ms);

  UniqueFd fd_;
  std::string buf_;
  nlohmann::json greeting_;
  std::vector<nlohmann::json> events_;
  std::vector<std::string> lines_;
  bool closed_ = false;
};

}  // namespace kuasar::sim::testing
