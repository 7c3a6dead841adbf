#include "sim/common/qmp_session.h"

#include <sys/time.h>

#include <memory>

#include "absl/strings/str_format.h"

namespace kuasar::sim {
namespace {

void DumpQemu(const OJson& v, std::string* out) {
  if (v.is_object()) {
    out->push_back('{');
    bool first = true;
    for (const auto& [k, e] : v.items()) {
      if (!first) out->append(", ");
      first = false;
      out->append(OJson(k).dump());
      out->append(": ");
      DumpQemu(e, out);
    }
    out->push_back('}');
  } else if (v.is_array()) {
    out->push_back('[');
    bool first = true;
    for (const auto& e : v) {
      if (!first) out->append(", ");
      first = false;
      DumpQemu(e, out);
    }
    out->push_back(']');
  } else {
    out->append(v.dump(-1, ' ', false, OJson::error_handler_t::replace));
  }
}

std::string ParseErrorText(const std::string& what) {
  // nlohmann: "[json.exception.parse_error.101] parse error at line 1, column 14: syntax
  // error while parsing value - invalid literal; last read: '..'" -> the part after ": ".
  size_t pos = what.find(": ");
  std::string reason = pos == std::string::npos ? what : what.substr(pos + 2);
  return absl::StrFormat("JSON parse error, %s", reason);
}

}  // namespace

QmpResult QmpResult::Ok(OJson ret) {
  QmpResult r;
  r.ret = std::move(ret);
  return r;
}

QmpResult QmpResult::Error(std::string cls, std::string desc) {
  QmpResult r;
  r.error = true;
  r.error_class = std::move(cls);
  r.error_desc = std::move(desc);
  return r;
}

QmpSession::QmpSession(QmpDialect dialect, OJson greeting, Dispatch dispatch, Write write,
                       Broadcast broadcast)
    : dialect_(dialect),
      greeting_(std::move(greeting)),
      dispatch_(std::move(dispatch)),
      write_(std::move(write)),
      broadcast_(std::move(broadcast)) {}

std::string QmpSession::Serialize(QmpDialect dialect, const OJson& value) {
  std::string out;
  if (dialect == QmpDialect::kQemu) {
    DumpQemu(value, &out);
  } else {
    out = value.dump(-1, ' ', false, OJson::error_handler_t::replace);
  }
  out.append("\r\n");
  return out;
}

OJson QmpSession::Timestamp() {
  timeval tv{};
  ::gettimeofday(&tv, nullptr);
  return OJson{{"seconds", static_cast<int64_t>(tv.tv_sec)},
               {"microseconds", static_cast<int64_t>(tv.tv_usec)}};
}

void QmpSession::Start() { write_(Serialize(dialect_, greeting_)); }

void QmpSession::SendEvent(const OJson& event) {
  if (!ready()) return;
  OJson e = OJson::object();
  if (dialect_ == QmpDialect::kStratoVirt) {
    // StratoVirt: event, data (always present), timestamp.
    e["event"] = event.value("event", "");
    e["data"] = event.contains("data") ? event["data"] : OJson::object();
    e["timestamp"] = Timestamp();
  } else {
    e["timestamp"] = Timestamp();
    e["event"] = event.value("event", "");
    if (event.contains("data")) e["data"] = event["data"];
  }
  write_(Serialize(dialect_, e));
}

bool QmpSession::PopFd(UniqueFd* fd) {
  if (fds_.empty()) return false;
  *fd = std::move(fds_.back());
  fds_.pop_back();
  return true;
}

void QmpSession::Feed(std::string_view bytes) {
  for (JsonPiece& p : splitter_.Feed(bytes)) queue_.push_back(std::move(p));
  Pump();
}

void QmpSession::Pump() {
  while (!busy_ && !queue_.empty()) {
    JsonPiece piece = std::move(queue_.front());
    queue_.pop_front();
    Process(piece);
  }
}

void QmpSession::Reply(const OJson& id, bool has_id, QmpResult result) {
  for (const OJson& e : result.events_before) broadcast_(e);
  OJson msg = OJson::object();
  if (result.error) {
    msg["error"] = OJson{{"class", result.error_class}, {"desc", result.error_desc}};
  } else {
    msg["return"] = std::move(result.ret);
  }
  if (has_id) msg["id"] = id;
  write_(Serialize(dialect_, msg));
  for (const OJson& e : result.events_after) broadcast_(e);
  if (result.after_sent) result.after_sent();
}

void QmpSession::Process(const JsonPiece& piece) {
  auto fail = [&](std::string desc) {
    Reply(OJson(), false, QmpResult::Error("GenericError", std::move(desc)));
  };
  switch (piece.kind) {
    case JsonPiece::Kind::kTooLarge:
      return fail("JSON parse error, token exceeds maximum length");
    case JsonPiece::Kind::kTooDeep:
      return fail("JSON parse error, nesting too deep");
    case JsonPiece::Kind::kStrayClose:
      return fail("JSON parse error, expecting value");
    case JsonPiece::Kind::kValue:
      break;
  }
  OJson msg;
  try {
    msg = OJson::parse(piece.text);
  } catch (const OJson::exception& e) {
    return fail(ParseErrorText(e.what()));
  }
  if (!msg.is_object()) return fail("QMP input must be a JSON object");
  OJson id;
  bool has_id = false;
  std::string command;
  OJson args = OJson::object();
  bool has_execute = false;
  for (const auto& [k, v] : msg.items()) {
    if (k == "execute") {
      if (!v.is_string()) return fail("QMP input member 'execute' must be a string");
      command = v.get<std::string>();
      has_execute = true;
    } else if (k == "arguments") {
      if (!v.is_object()) return fail("QMP input member 'arguments' must be an object");
      args = v;
    } else if (k == "id") {
      id = v;
      has_id = true;
    } else {
      return fail(absl::StrFormat("QMP input member '%s' is unexpected", k));
    }
  }
  if (!has_execute) return fail("QMP input lacks member 'execute'");
  if (command == "qmp_capabilities") {
    if (dialect_ == QmpDialect::kQemu && negotiated_) {
      return Reply(id, has_id,
                   QmpResult::Error("CommandNotFound",
                                    "Capabilities negotiation is already complete, command "
                                    "ignored"));
    }
    for (const auto& [k, v] : args.items()) {
      if (k != "enable") {
        return Reply(
            id, has_id,
            QmpResult::Error("GenericError", absl::StrFormat("Parameter '%s' is unexpected", k)));
      }
    }
    negotiated_ = true;
    return Reply(id, has_id, QmpResult::Ok());
  }
  if (dialect_ == QmpDialect::kQemu && !negotiated_) {
    return Reply(id, has_id,
                 QmpResult::Error("CommandNotFound",
                                  "Expecting capabilities negotiation with 'qmp_capabilities'"));
  }
  busy_ = true;
  auto alive = std::make_shared<bool>(true);
  alive_guard_ = alive;
  in_dispatch_ = true;
  dispatch_(*this, command, args, [this, alive, id, has_id](QmpResult r) {
    if (!*alive) return;
    Reply(id, has_id, std::move(r));
    busy_ = false;
    if (!in_dispatch_) Pump();  // a synchronous reply: the caller's Pump loop goes on
  });
  in_dispatch_ = false;
}

}  // namespace kuasar::sim
