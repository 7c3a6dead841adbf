// QmpClient: QEMU Machine Protocol over a unix socket (QEMU docs/interop/qmp-spec.rst):
// JSON lines; the server greets, the client must send qmp_capabilities first; commands
// carry an "id" echoed in the reply; asynchronous events arrive between replies. Also
// what StratoVirt speaks. Thread-safe; Execute blocks, so never call it on the client's
// io thread; the event and disconnect callbacks run on that thread and must not block.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/base/unique_fd.h"

namespace boost::asio {
class io_context;
}

namespace kuasar::vmm {

struct QmpEvent {
  std::string name;     // "SHUTDOWN", "STOP", "RESUME", "DEVICE_DELETED", ...
  nlohmann::json data;  // the event's "data" (an object, possibly empty)
  absl::Time at;        // the server's timestamp
};

struct QmpClientOptions {
  // Run on this io_context (the caller runs it and keeps it alive past the client);
  // when null the client owns one with a single thread.
  boost::asio::io_context* io_context = nullptr;
  // Greeting plus capabilities negotiation must finish within this.
  absl::Duration handshake_timeout = absl::Seconds(5);
  std::function<void(const QmpEvent&)> on_event;
  // Runs once when the connection closes for any reason (Close included).
  std::function<void(const absl::Status&)> on_disconnect;
  // Connect: checked between retries; an error stops retrying (e.g. the VMM died).
  std::function<absl::Status()> keep_trying;
};

class QmpClient {
 public:
  using Callback = std::function<void(absl::StatusOr<nlohmann::json>)>;

  // Connects to `socket_path`, retrying while it is missing or refuses until `deadline`
  // (a VMM creates it while starting), then greets and negotiates capabilities.
  static absl::StatusOr<std::unique_ptr<QmpClient>> Connect(const std::string& socket_path,
                                                            absl::Time deadline,
                                                            QmpClientOptions options = {});
  // Takes a connected stream (a socketpair end in tests) and does the handshake.
  static absl::StatusOr<std::unique_ptr<QmpClient>> FromFd(UniqueFd fd,
                                                           QmpClientOptions options = {});
  ~QmpClient();
  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;

  // Runs `command` with `arguments` (an object, or null for none): the reply's "return"
  // value, the QMP error as a status (QmpErrorToStatus), DEADLINE_EXCEEDED after
  // `timeout`, UNAVAILABLE if the connection is lost.
  absl::StatusOr<nlohmann::json> Execute(std::string_view command,
                                         const nlohmann::json& arguments = nullptr,
                                         absl::Duration timeout = absl::Seconds(10));
  // As Execute, but returns at once; `done` runs exactly once, on the io thread.
  void ExecuteAsync(std::string_view command, const nlohmann::json& arguments,
                    absl::Duration timeout, Callback done);

  // The greeting's "QMP" object ({"version": {...}, "capabilities": [...]}).
  const nlohmann::json& greeting() const { return greeting_; }
  bool IsConnected() const;
  // Fails pending commands with UNAVAILABLE and closes; no callback runs after it
  // returns (unless called on the io thread, where the current one finishes). Idempotent.
  void Close();

 private:
  struct Impl;
  explicit QmpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  nlohmann::json greeting_;
};

// A QMP error object {"class": ..., "desc": ...} as a status naming the command:
// CommandNotFound -> UNIMPLEMENTED, DeviceNotFound -> NOT_FOUND, DeviceNotActive and
// KVMMissingCap -> FAILED_PRECONDITION, GenericError and others -> UNKNOWN.
absl::Status QmpErrorToStatus(std::string_view command, const nlohmann::json& error);

}  // namespace kuasar::vmm
