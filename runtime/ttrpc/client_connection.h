// ClientConnection: the client end of one ttrpc connection. Assigns odd, increasing
// stream ids in send order, matches Response/Data frames to calls, enforces client-side
// deadlines, and fails every pending call with UNAVAILABLE when the connection dies.
// Internal to runtime/ttrpc. Public methods post to the strand; call them from io
// threads or inside IoLifetime::Run.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/ttrpc/client_stream.h"
#include "runtime/ttrpc/framed_connection.h"

namespace kuasar::ttrpc {

struct ClientCall {
  using Callback = std::function<void(absl::StatusOr<std::string>)>;
  std::string request_frame;  // encoded with stream id 0; patched when sent
  std::optional<std::chrono::steady_clock::time_point> deadline;
  Callback done;                             // unary calls
  std::shared_ptr<ClientStreamState> stream;  // streaming calls
};

class ClientConnection final : public FramedConnection {
 public:
  ClientConnection(boost::asio::io_context& io, UniqueFd fd, Options options,
                   std::function<void(const absl::Status&)> on_disconnect);

  void StartCall(std::shared_ptr<ClientCall> call);
  // A Data frame on a stream (encoded with id 0).
  void SendStreamFrame(std::shared_ptr<ClientStreamState> stream, std::string frame);
  void AbandonStream(std::shared_ptr<ClientStreamState> stream);
  // Refuse new calls from now on (graceful close); WaitIdle, then CloseNow.
  void StopAccepting();
  void CloseNow(absl::Status reason);

  // Any thread except io threads.
  bool WaitIdle(std::chrono::steady_clock::time_point until);
  bool WaitClosed(std::chrono::steady_clock::time_point until);
  bool IsOpen() const;

 private:
  struct Entry {
    std::shared_ptr<ClientCall> call;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };
  using CallMap = std::map<std::uint32_t, Entry>;

  bool OnFrame(DecodedFrame& frame) override;
  void OnClosed(const absl::Status& reason) override;
  void OnUnaryFrame(CallMap::iterator it, DecodedFrame& frame);
  void OnStreamFrame(CallMap::iterator it, DecodedFrame& frame);
  void Complete(CallMap::iterator it, absl::Status status, std::string payload = {});
  void UpdatePending();
  std::shared_ptr<ClientConnection> self();

  std::function<void(const absl::Status&)> on_disconnect_;
  CallMap calls_;
  std::uint32_t next_id_ = 1;
  bool accepting_ = true;
  absl::Status refuse_status_;

  mutable std::mutex state_mu_;
  std::condition_variable state_cv_;
  std::size_t pending_ = 0;
  bool stopped_accepting_ = false;
  bool open_ = true;
  bool close_done_ = false;
};

}  // namespace kuasar::ttrpc
