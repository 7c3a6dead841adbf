// The handler signatures a ttrpc Server dispatches to, and the responder through which
// an asynchronous unary handler completes its call later, from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/ttrpc/call_context.h"
#include "runtime/ttrpc/io_lifetime.h"

namespace kuasar::ttrpc {

class ServerConnection;
class ServerStream;

// Completes one unary call. Copyable; every copy refers to the same call. Finish may
// be called from any thread, at any time (a parked Task.Wait answers when the process
// exits); the first Finish wins, later ones are ignored, and so is a Finish after the
// call was cancelled. If every copy is destroyed without Finish, the client gets
// INTERNAL "handler dropped the call".
class UnaryResponder {
 public:
  struct State;
  UnaryResponder() = default;
  explicit UnaryResponder(std::shared_ptr<State> state) : state_(std::move(state)) {}

  void Finish(absl::StatusOr<std::string> response) const;
  bool finished() const;

 private:
  std::shared_ptr<State> state_;
};

// Called on an io thread with the request payload; must not block. Keep the responder
// (and the context, to watch for cancellation) and finish the call whenever ready.
using UnaryHandler =
    std::function<void(CallContextPtr ctx, std::string request, UnaryResponder responder)>;

// Runs on the server's worker pool and returns the response payload or an error.
using BlockingUnaryHandler =
    std::function<absl::StatusOr<std::string>(const CallContext& ctx, const std::string& request)>;

// Runs on the worker pool for the life of the stream. Its result ends the stream: for a
// server-streaming method an OK result is sent as the last data message (none when
// empty); otherwise as the Response (Go ttrpc: streamCall then respond).
using StreamHandler = std::function<absl::StatusOr<std::string>(ServerStream& stream)>;

struct UnaryResponder::State {
  State(std::weak_ptr<ServerConnection> conn, std::shared_ptr<IoLifetime> lifetime,
        std::uint32_t stream_id)
      : conn(std::move(conn)), lifetime(std::move(lifetime)), stream_id(stream_id) {}
  ~State();
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  const std::weak_ptr<ServerConnection> conn;
  const std::shared_ptr<IoLifetime> lifetime;
  const std::uint32_t stream_id;
  std::atomic<bool> done{false};
};

}  // namespace kuasar::ttrpc
