#include "runtime/sandboxers/vmm/common/qmp_connection.h"

#include "runtime/sandboxers/vmm/common/qmp_replies.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <ostream>

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include "absl/strings/str_format.h"

namespace kuasar::vmm {
namespace {

using nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

QmpConnection::QmpConnection(boost::asio::io_context& io, UniqueFd fd, std::string leftover,
                             std::function<void(const QmpEvent&)> on_event,
                             std::function<void(const absl::Status&)> on_disconnect)
    : io_(io),
      socket_(io),
      on_event_(std::move(on_event)),
      on_disconnect_(std::move(on_disconnect)) {
  boost::system::error_code ec;
  socket_.assign(boost::asio::local::stream_protocol(), fd.Release(), ec);
  if (ec) open_ = false;
  if (!leftover.empty()) {
    std::ostream os(&in_);
    os << leftover;
  }
}

void QmpConnection::Start() {
  boost::asio::post(io_, [self = shared_from_this()] {
    if (!self->IsOpen()) {
      self->CloseNow(absl::UnavailableError("QMP: socket could not be registered"), false);
      return;
    }
    self->ReadNext();
  });
}

void QmpConnection::ReadNext() {
  boost::asio::async_read_until(
      socket_, in_, '\n',
      [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
        if (!self->IsOpen()) return;
        if (ec) {
          if (ec == boost::asio::error::eof) {
            self->CloseNow(absl::UnavailableError("QMP: connection closed by the VMM"), false);
          } else if (ec == boost::asio::error::not_found) {
            self->CloseNow(absl::DataLossError("QMP: line over the size limit"), false);
          } else {
            self->CloseNow(
                absl::UnavailableError(absl::StrFormat("QMP: read failed: %s", ec.message())),
                false);
          }
          return;
        }
        auto begin = boost::asio::buffers_begin(self->in_.data());
        std::string line(begin, begin + static_cast<std::ptrdiff_t>(n - 1));
        self->in_.consume(n);
        self->OnLine(line);
        if (self->IsOpen()) self->ReadNext();
      });
}

void QmpConnection::OnLine(const std::string& line) {
  json msg = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (msg.is_discarded() || !msg.is_object()) {
    CloseNow(absl::DataLossError(absl::StrFormat("QMP: not a JSON object: %.200s", line)), false);
    return;
  }
  if (auto ev = msg.find("event"); ev != msg.end() && ev->is_string()) {
    if (!on_event_) return;
    json data = msg.contains("data") && msg["data"].is_object() ? msg["data"] : json::object();
    QmpEvent event{ev->get<std::string>(), std::move(data), QmpEventTime(msg, absl::Now())};
    on_event_(event);
    return;
  }
  bool is_return = msg.contains("return");
  if (!is_return && !msg.contains("error")) return;  // not ours to interpret
  // Replies carry our id; a reply to a command QEMU could not even parse has none, and
  // QMP answers in order, so it belongs to the oldest pending command.
  uint64_t id = 0;
  if (auto it = msg.find("id"); it != msg.end() && it->is_number_unsigned()) {
    id = it->get<uint64_t>();
  } else if (!pending_.empty()) {
    id = pending_.begin()->first;
  }
  auto p = pending_.find(id);
  if (p == pending_.end()) return;  // late reply to a command that timed out
  if (is_return) {
    Complete(id, std::move(msg["return"]));
  } else {
    Complete(id, QmpErrorToStatus(p->second.command, msg["error"]));
  }
}

void QmpConnection::Complete(uint64_t id, absl::StatusOr<json> result) {
  auto p = pending_.find(id);
  if (p == pending_.end()) return;
  Callback done = std::move(p->second.done);
  pending_.erase(p);  // destroys the timer, cancelling it
  done(std::move(result));
}

void QmpConnection::Submit(std::string command, json msg, absl::Duration timeout, Callback done) {
  boost::asio::post(io_, [self = shared_from_this(), command = std::move(command),
                          msg = std::move(msg), timeout, done = std::move(done)]() mutable {
    if (!self->IsOpen()) {
      done(absl::UnavailableError(absl::StrFormat("QMP %s: not connected", command)));
      return;
    }
    uint64_t id = self->next_id_++;
    msg["id"] = id;
    auto timer = std::make_unique<boost::asio::steady_timer>(self->io_);
    timer->expires_after(absl::ToChronoMilliseconds(timeout));
    timer->async_wait([weak = std::weak_ptr<QmpConnection>(self), id, command,
                       timeout](const boost::system::error_code& ec) {
      auto conn = weak.lock();
      if (ec || !conn) return;
      conn->Complete(
          id, absl::DeadlineExceededError(absl::StrFormat("QMP %s: no reply within %s", command,
                                                          absl::FormatDuration(timeout))));
    });
    self->pending_[id] = Pending{command, std::move(done), std::move(timer)};
    self->out_.push_back(Dump(msg) + "\n");
    self->WriteNext();
  });
}

void QmpConnection::WriteNext() {
  if (writing_ || out_.empty() || !IsOpen()) return;
  writing_ = true;
  boost::asio::async_write(
      socket_, boost::asio::buffer(out_.front()),
      [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
        self->writing_ = false;
        if (!self->IsOpen()) return;
        if (ec) {
          self->CloseNow(
              absl::UnavailableError(absl::StrFormat("QMP: write failed: %s", ec.message())),
              false);
          return;
        }
        self->out_.pop_front();
        self->WriteNext();
      });
}

void QmpConnection::CloseNow(const absl::Status& why, bool final) {
  if (open_.exchange(false)) {
    boost::system::error_code ignored;
    socket_.close(ignored);
    out_.clear();
    std::map<uint64_t, Pending> failed;
    failed.swap(pending_);
    for (auto& [id, p] : failed) p.done(why);
    if (auto cb = std::move(on_disconnect_)) {
      on_disconnect_ = nullptr;
      cb(why);
    }
  }
  if (final) {
    on_event_ = nullptr;
    on_disconnect_ = nullptr;
  }
}

void QmpConnection::CloseAndWait(absl::Duration limit) {
  struct Done {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
  };
  auto done = std::make_shared<Done>();
  boost::asio::post(io_, [self = shared_from_this(), done] {
    self->CloseNow(absl::UnavailableError("QMP: client closed"), /*final=*/true);
    std::lock_guard<std::mutex> lock(done->mu);
    done->done = true;
    done->cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(done->mu);
  done->cv.wait_for(lock, absl::ToChronoMilliseconds(limit), [&] { return done->done; });
}

}  // namespace kuasar::vmm
