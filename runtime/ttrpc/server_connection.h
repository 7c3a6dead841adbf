// ServerConnection: the server end of one ttrpc connection. It routes Request frames to
// registered handlers, feeds Data frames to streams, enforces deadlines, and writes
// responses in whatever order calls complete. Follows Go ttrpc's server.go for every
// error status it sends. Internal to runtime/ttrpc.
// Threading: the public methods may be called from any thread; they post to the strand.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "runtime/ttrpc/framed_connection.h"
#include "runtime/ttrpc/server_core.h"
#include "runtime/ttrpc/server_stream.h"

namespace kuasar::ttrpc {

class ServerConnection final : public FramedConnection {
 public:
  ServerConnection(boost::asio::io_context& io, UniqueFd fd, std::shared_ptr<ServerCore> core,
                   std::string tag = "",
                   std::function<void(const absl::Status&)> on_closed = nullptr);
  ~ServerConnection() override;

  // Ends call `stream_id` with `status` (and `payload` when OK), unless it already ended.
  void FinishCall(std::uint32_t stream_id, absl::Status status, std::string payload);
  // FinishCall for code off the strand (workers, responders): a no-op once the
  // connection or its io_context is gone.
  static void FinishFromAnyThread(const std::weak_ptr<ServerConnection>& weak,
                                  IoLifetime& lifetime, std::uint32_t stream_id,
                                  absl::StatusOr<std::string> result);
  // One server-streaming message (already size-checked).
  void SendStreamMessage(std::uint32_t stream_id, std::string payload);
  // Dispatches a serialized ttrpc.Request on `stream_id` as if it had just arrived
  // (ServeConnectionOptions::replay); it does not have to be above earlier stream ids.
  void Replay(std::uint32_t stream_id, std::string request);
  // Close once no call is in flight (graceful shutdown).
  void Drain();
  // Close now, cancelling calls in flight.
  void ForceClose(absl::Status reason);

 private:
  struct ActiveCall {
    CallContextPtr ctx;
    std::shared_ptr<ServerStream> stream;  // null for unary calls
    bool server_streaming = false;
    std::unique_ptr<boost::asio::steady_timer> deadline_timer;
  };
  using CallMap = std::map<std::uint32_t, ActiveCall>;

  bool OnFrame(DecodedFrame& frame) override;
  void OnClosed(const absl::Status& reason) override;

  void HandleRequest(DecodedFrame& frame, bool replayed = false);
  bool HandleData(DecodedFrame& frame);
  void StartCall(std::uint32_t id, std::uint8_t flags, std::shared_ptr<const MethodEntry> entry,
                 CallContextPtr ctx, std::string payload);
  // Sends an error Response on `id`; a live call with that id ends (Go deletes the stream).
  void SendStatus(std::uint32_t id, const absl::Status& status);
  // Removes the call; cancels its context with `reason` unless reason is OK (finished).
  void EndCall(CallMap::iterator it, const absl::Status& reason);
  void DoFinish(std::uint32_t id, const absl::Status& status, const std::string& payload);
  void OnDeadline(std::uint32_t id);
  void OnStreamRoom(std::uint64_t gen);
  void OnStreamFullTimeout(std::uint64_t gen);
  void MaybeCloseDrained();
  std::shared_ptr<ServerConnection> self();

  const std::shared_ptr<ServerCore> core_;
  const std::string tag_;
  std::function<void(const absl::Status&)> on_closed_;
  CallMap calls_;
  std::uint32_t last_stream_id_ = 0;
  bool draining_ = false;
  // A Data frame waiting for room in its stream; reading is paused meanwhile.
  std::optional<DecodedFrame> blocked_;
  std::uint64_t blocked_gen_ = 0;
  boost::asio::steady_timer stream_full_timer_;
};

}  // namespace kuasar::ttrpc
