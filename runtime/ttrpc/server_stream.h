// ServerStream: the server side of one streaming call, handed to a StreamHandler that
// runs on the worker pool. Recv blocks for the client's next message; Send queues one to
// the client (blocking only while the connection's write queue is over its high water
// mark). Thread-safe; the connection feeds it from its strand.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/ttrpc/call_context.h"
#include "runtime/ttrpc/call_options.h"
#include "runtime/ttrpc/io_lifetime.h"

namespace google::protobuf {
class MessageLite;
}

namespace kuasar::ttrpc {

class ServerConnection;

class ServerStream {
 public:
  ServerStream(CallContextPtr ctx, StreamKind kind, std::weak_ptr<ServerConnection> conn,
               std::shared_ptr<IoLifetime> lifetime, std::shared_ptr<WriteBudget> budget,
               std::uint32_t stream_id, std::size_t capacity);
  ServerStream(const ServerStream&) = delete;
  ServerStream& operator=(const ServerStream&) = delete;

  const CallContext& context() const { return *ctx_; }
  const CallContextPtr& context_ptr() const { return ctx_; }
  StreamKind kind() const { return kind_; }

  // Next message from the client; false once the client closed its side or the call was
  // cancelled (check context().CancelStatus()).
  bool Recv(std::string* message);
  // true: a message; false: end of stream; error: the message did not parse.
  absl::StatusOr<bool> RecvMessage(google::protobuf::MessageLite* message);

  // Server-streaming methods only. Fails once the call is cancelled or the connection is
  // gone, and for messages over kMaxMessageSize (RESOURCE_EXHAUSTED).
  absl::Status Send(std::string_view message);
  absl::Status SendMessage(const google::protobuf::MessageLite& message);

  // Used by ServerConnection, on its strand.
  enum class PushResult { kOk, kFull, kClosed };
  PushResult Push(std::string& message);  // moves from `message` only on kOk
  void CloseRemote();  // the client sent its last message
  void Abort();        // the call is over; wake Recv
  // Runs `fn` (once) when Recv next makes room; used to resume a paused connection.
  void NotifyWhenRoom(std::function<void()> fn);

 private:
  const CallContextPtr ctx_;
  const StreamKind kind_;
  const std::weak_ptr<ServerConnection> conn_;
  const std::shared_ptr<IoLifetime> lifetime_;
  const std::shared_ptr<WriteBudget> budget_;
  const std::uint32_t stream_id_;
  const std::size_t capacity_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> inbound_;
  bool remote_closed_ = false;
  bool aborted_ = false;
  std::function<void()> room_waiter_;
};

}  // namespace kuasar::ttrpc
