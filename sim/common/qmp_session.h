// QmpSession: one QMP client connection's protocol state (QEMU docs/interop/qmp-spec),
// without the socket: greeting, capabilities negotiation, the JSON stream cut into
// commands, envelope checks with QEMU's error texts, in-order replies (a delayed command
// holds back the ones after it), id echo, events. Two dialects: QEMU (negotiation first,
// "key": value spacing, events only after negotiation) and StratoVirt (no negotiation
// needed, compact JSON). Lines end in CRLF, as QEMU writes them. One io_context thread.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/base/unique_fd.h"
#include "sim/common/json_stream.h"

namespace kuasar::sim {

enum class QmpDialect { kQemu, kStratoVirt };
using OJson = nlohmann::ordered_json;

// What a command produced: its return or error, events around the reply, and an action
// to run once the reply is written (e.g. exit for quit).
struct QmpResult {
  OJson ret = OJson::object();
  bool error = false;
  std::string error_class, error_desc;
  std::vector<OJson> events_before, events_after;  // {"event": ..., "data": ...}
  std::function<void()> after_sent;

  static QmpResult Ok(OJson ret = OJson::object());
  static QmpResult Error(std::string cls, std::string desc);
};

class QmpSession {
 public:
  using Write = std::function<void(std::string bytes)>;
  using Done = std::function<void(QmpResult)>;
  using Dispatch = std::function<void(QmpSession& session, const std::string& command,
                                      const OJson& arguments, Done done)>;
  // Sends an event (timestamp added here) to every ready session of the server.
  using Broadcast = std::function<void(const OJson& event)>;

  QmpSession(QmpDialect dialect, OJson greeting, Dispatch dispatch, Write write,
             Broadcast broadcast);
  ~QmpSession() {
    if (alive_guard_) *alive_guard_ = false;
    *life_ = false;
  }
  // False once the session is gone (for work that outlives a command's dispatch).
  std::shared_ptr<const bool> life() const { return life_; }
  QmpSession(const QmpSession&) = delete;
  QmpSession& operator=(const QmpSession&) = delete;
  void Start();  // writes the greeting
  void Feed(std::string_view bytes);
  // Events reach a QEMU client only after negotiation.
  bool ready() const { return dialect_ == QmpDialect::kStratoVirt || negotiated_; }
  void SendEvent(const OJson& event);  // event without timestamp

  // File descriptors received with SCM_RIGHTS, for getfd.
  void PushFd(UniqueFd fd) { fds_.push_back(std::move(fd)); }
  bool PopFd(UniqueFd* fd);

  static std::string Serialize(QmpDialect dialect, const OJson& value);
  static OJson Timestamp();

 private:
  void Pump();
  void Process(const JsonPiece& piece);
  void Reply(const OJson& id, bool has_id, QmpResult result);

  QmpDialect dialect_;
  OJson greeting_;
  Dispatch dispatch_;
  Write write_;
  Broadcast broadcast_;
  JsonStreamSplitter splitter_;
  std::deque<JsonPiece> queue_;
  bool busy_ = false;
  bool in_dispatch_ = false;
  bool negotiated_ = false;
  std::deque<UniqueFd> fds_;
  std::shared_ptr<bool> alive_guard_;
  std::shared_ptr<bool> life_ =
      std::make_shared<bool>(true);  // set false on destruction: late replies are dropped
};

}  // namespace kuasar::sim
