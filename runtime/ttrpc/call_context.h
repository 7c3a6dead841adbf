// CallContext: what a server handler knows about its call (service, method, metadata,
// deadline) and how it learns the call is over early (deadline passed, connection
// closed, server shutting down). Thread-safe; shared by the handler and the connection.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "runtime/ttrpc/call_options.h"

namespace kuasar::ttrpc {

class CallContext {
 public:
  using Clock = std::chrono::steady_clock;

  CallContext(std::string service, std::string method, Metadata metadata,
              std::optional<Clock::time_point> deadline);
  CallContext(const CallContext&) = delete;
  CallContext& operator=(const CallContext&) = delete;

  const std::string& service() const { return service_; }
  const std::string& method() const { return method_; }
  const Metadata& metadata() const { return metadata_; }
  // The first value for `key`, if any.
  std::optional<std::string> GetMetadata(std::string_view key) const;
  // From Request.timeout_nano, counted from when the request arrived.
  std::optional<Clock::time_point> deadline() const { return deadline_; }
  // Where the call came from: the tag its connection was served with (see
  // ServeConnectionOptions) and its stream id. A handler that parks a call can record
  // both and have it replayed on the same connection after a process restart.
  const std::string& connection_tag() const { return connection_tag_; }
  std::uint32_t stream_id() const { return stream_id_; }
  // Set by the server before the handler runs.
  void SetOrigin(std::string connection_tag, std::uint32_t stream_id) {
    connection_tag_ = std::move(connection_tag);
    stream_id_ = stream_id;
  }

  // True once the call is cancelled: its deadline passed, its connection closed, or the
  // server stopped it. The response of a cancelled call is dropped.
  bool Cancelled() const;
  // Why it was cancelled (DEADLINE_EXCEEDED, UNAVAILABLE, ...); OK while not cancelled.
  absl::Status CancelStatus() const;
  // Runs `fn` once on cancellation, at once if already cancelled. `fn` may run on an io
  // thread with the call's connection busy: it must not block. Callbacks of a call that
  // finished normally are dropped without running.
  void OnCancel(std::function<void()> fn);
  // Blocks up to `timeout`; true if the call was cancelled by then. For blocking handlers.
  bool WaitForCancel(std::chrono::nanoseconds timeout) const;

  // Used by the server: cancel with `reason` (runs callbacks), or retire after a response.
  void Cancel(absl::Status reason);
  void MarkFinished();

 private:
  const std::string service_;
  const std::string method_;
  const Metadata metadata_;
  const std::optional<Clock::time_point> deadline_;
  std::string connection_tag_;
  std::uint32_t stream_id_ = 0;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  absl::Status cancel_status_;
  bool cancelled_ = false;
  bool finished_ = false;
  std::vector<std::function<void()>> callbacks_;
};

using CallContextPtr = std::shared_ptr<CallContext>;

}  // namespace kuasar::ttrpc
