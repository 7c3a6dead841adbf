// ClientStream: the client side of one streaming ttrpc call (client-, server- or
// bidirectional streaming). Send/CloseSend queue frames; Recv blocks for the server's
// next message; Finish waits for the end and returns the call's final status.
// Thread-safe; typically one thread sends while another receives.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/ttrpc/call_options.h"
#include "runtime/ttrpc/io_lifetime.h"

namespace google::protobuf {
class MessageLite;
}

namespace kuasar::ttrpc {

class ClientConnection;

// Shared by a ClientStream and its connection. Internal.
struct ClientStreamState {
  explicit ClientStreamState(StreamKind k) : kind(k) {}
  // Strand only: queue a message from the server / end the stream (first end wins).
  // Deliver returns false when the buffer limit is hit (the stream is then ended).
  bool Deliver(std::string message);
  void End(absl::Status status);

  const StreamKind kind;
  std::uint32_t id = 0;  // assigned on the strand when the request is sent
  std::optional<std::chrono::steady_clock::time_point> deadline;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> inbound;
  std::size_t inbound_bytes = 0;
  std::optional<absl::Status> final_status;
  bool local_closed = false;
};

class ClientStream {
 public:
  ClientStream(std::shared_ptr<ClientStreamState> state, std::weak_ptr<ClientConnection> conn,
               std::shared_ptr<IoLifetime> lifetime, std::shared_ptr<WriteBudget> budget);
  // Abandons a stream still open: later frames for it are dropped.
  ~ClientStream();
  ClientStream(const ClientStream&) = delete;
  ClientStream& operator=(const ClientStream&) = delete;

  // Client-streaming calls only; fails after CloseSend or once the stream ended.
  absl::Status Send(std::string_view message);
  absl::Status SendMessage(const google::protobuf::MessageLite& message);
  // Tells the server no more messages follow (Data with remote-closed|no-data).
  absl::Status CloseSend();

  // Next message from the server; false at the end of the stream (see Finish).
  bool Recv(std::string* message);
  // true: a message; false: end of stream; error: it did not parse.
  absl::StatusOr<bool> RecvMessage(google::protobuf::MessageLite* message);

  // Closes the sending side if still open, waits for the end of the stream (unread
  // messages are dropped) and returns its status: OK, the server's error,
  // DEADLINE_EXCEEDED, or UNAVAILABLE when the connection was lost.
  absl::Status Finish();

 private:
  absl::Status SendFrame(std::string_view payload, std::uint8_t flags);

  const std::shared_ptr<ClientStreamState> state_;
  const std::weak_ptr<ClientConnection> conn_;
  const std::shared_ptr<IoLifetime> lifetime_;
  const std::shared_ptr<WriteBudget> budget_;
};

}  // namespace kuasar::ttrpc
