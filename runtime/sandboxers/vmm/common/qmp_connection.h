// QmpConnection: the io-thread half of QmpClient (internal to it): reads JSON lines,
// matches replies to commands by id, times commands out, hands events to the owner.
// Submit, IsOpen and CloseAndWait are thread-safe; the rest runs on the io thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/base/unique_fd.h"
#include "runtime/sandboxers/vmm/common/qmp_client.h"

namespace kuasar::vmm {

// A bound on one line from the VMM (query-qmp-schema replies run to a few hundred KiB).
inline constexpr size_t kMaxQmpLine = 16u << 20;

class QmpConnection : public std::enable_shared_from_this<QmpConnection> {
 public:
  using Callback = std::function<void(absl::StatusOr<nlohmann::json>)>;

  // `leftover`: bytes the handshake read past its last line.
  QmpConnection(boost::asio::io_context& io, UniqueFd fd, std::string leftover,
                std::function<void(const QmpEvent&)> on_event,
                std::function<void(const absl::Status&)> on_disconnect);

  void Start();
  // Any thread. Sends `msg` (an "execute" object; the id is added here); `done` runs
  // exactly once on the io thread.
  void Submit(std::string command, nlohmann::json msg, absl::Duration timeout, Callback done);
  // io thread. Fails pending commands with `why`; `final` also drops the owner's
  // callbacks so none runs afterwards.
  void CloseNow(const absl::Status& why, bool final);
  // Not on the io thread: CloseNow(final) there, waiting at most `limit` for it.
  void CloseAndWait(absl::Duration limit);
  bool IsOpen() const { return open_.load(); }

 private:
  struct Pending {
    std::string command;
    Callback done;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };

  void ReadNext();
  void OnLine(const std::string& line);
  void Complete(uint64_t id, absl::StatusOr<nlohmann::json> result);
  void WriteNext();

  boost::asio::io_context& io_;
  boost::asio::local::stream_protocol::socket socket_;
  boost::asio::streambuf in_{kMaxQmpLine};
  std::deque<std::string> out_;
  bool writing_ = false;
  std::map<uint64_t, Pending> pending_;
  uint64_t next_id_ = 1;
  std::atomic<bool> open_{true};
  std::function<void(const QmpEvent&)> on_event_;
  std::function<void(const absl::Status&)> on_disconnect_;
};

}  // namespace kuasar::vmm
