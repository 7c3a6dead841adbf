#include "runtime/ttrpc/client_connection.h"

#include <utility>

#include <boost/asio/bind_executor.hpp>

#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "runtime/ttrpc/wire.h"
#include "ttrpc/request.pb.h"

#include <spdlog/spdlog.h>

namespace kuasar::ttrpc {
namespace {

absl::Status ProtocolError(std::string_view what) {
  return absl::InternalError(absl::StrFormat("ttrpc: %s: protocol error", what));
}

absl::StatusOr<std::string> ParseResponse(const std::string& payload) {
  ::ttrpc::Response response;
  if (!response.ParseFromString(payload)) {
    return absl::InternalError("ttrpc: cannot parse the response envelope");
  }
  absl::Status status = StatusFromProto(response.status());
  if (!status.ok()) return status;
  return std::move(*response.mutable_payload());
}

}  // namespace

ClientConnection::ClientConnection(boost::asio::io_context& io, UniqueFd fd, Options options,
                                   std::function<void(const absl::Status&)> on_disconnect)
    : FramedConnection(io, std::move(fd), std::move(options)),
      on_disconnect_(std::move(on_disconnect)) {}

std::shared_ptr<ClientConnection> ClientConnection::self() {
  return std::static_pointer_cast<ClientConnection>(shared_from_this());
}

void ClientConnection::StartCall(std::shared_ptr<ClientCall> call) {
  Post([self = self(), call = std::move(call)]() mutable {
    auto fail = [&](const absl::Status& st) {
      if (call->stream) {
        call->stream->End(IsolatedCopy(st));
      } else {
        call->done(IsolatedCopy(st));
      }
    };
    if (self->closed() || !self->accepting_) {
      fail(self->refuse_status_.ok() ? absl::UnavailableError("ttrpc: connection closed")
                                     : self->refuse_status_);
      return;
    }
    const std::uint32_t id = self->next_id_;
    if (id > 0x7fffffffu) {  // PROTOCOL.md: ids must increase; never wrap onto old ones
      fail(absl::ResourceExhaustedError("ttrpc: stream ids exhausted on this connection"));
      return;
    }
    self->next_id_ += 2;
    SetFrameStreamId(call->request_frame, id);
    if (call->stream) call->stream->id = id;
    Entry entry;
    if (call->deadline) {
      entry.timer = std::make_unique<boost::asio::steady_timer>(self->strand());
      entry.timer->expires_at(*call->deadline);
      entry.timer->async_wait(boost::asio::bind_executor(
          self->strand(), [self, id](const boost::system::error_code& ec) {
            if (ec) return;
            auto it = self->calls_.find(id);
            if (it != self->calls_.end()) {
              self->Complete(it, absl::DeadlineExceededError("context deadline exceeded"));
            }
          }));
    }
    std::string frame = std::move(call->request_frame);
    entry.call = std::move(call);
    self->calls_.emplace(id, std::move(entry));
    self->UpdatePending();
    self->Send(std::move(frame));
  });
}

void ClientConnection::SendStreamFrame(std::shared_ptr<ClientStreamState> stream,
                                       std::string frame) {
  Post([self = self(), stream = std::move(stream), frame = std::move(frame)]() mutable {
    if (self->closed() || stream->id == 0 || self->calls_.count(stream->id) == 0) return;
    SetFrameStreamId(frame, stream->id);
    self->Send(std::move(frame));
  });
}

void ClientConnection::AbandonStream(std::shared_ptr<ClientStreamState> stream) {
  Post([self = self(), stream = std::move(stream)] {
    auto it = self->calls_.find(stream->id);
    if (it != self->calls_.end() && it->second.call->stream == stream) {
      self->Complete(it, absl::CancelledError("ttrpc: stream abandoned"));
    }
  });
}

void ClientConnection::StopAccepting() {
  Post([self = self()] {
    self->accepting_ = false;
    self->refuse_status_ = absl::UnavailableError("ttrpc: client closed");
    {
      std::lock_guard<std::mutex> lock(self->state_mu_);
      self->stopped_accepting_ = true;
    }
    self->state_cv_.notify_all();
  });
}

void ClientConnection::CloseNow(absl::Status reason) {
  Post([self = self(), reason = std::move(reason)] { self->Close(reason); });
}

bool ClientConnection::OnFrame(DecodedFrame& frame) {
  auto it = calls_.find(frame.header.stream_id);
  if (it == calls_.end()) {
    // A late answer to a call that timed out or was abandoned (Go logs the same).
    spdlog::debug("ttrpc client: message on inactive stream={} type={}", frame.header.stream_id,
                  frame.header.type);
    return true;
  }
  if (frame.oversized) {
    Complete(it, OversizedMessageStatus(frame.header.length));
    return true;
  }
  if (it->second.call->stream) {
    OnStreamFrame(it, frame);
  } else {
    OnUnaryFrame(it, frame);
  }
  return true;
}

void ClientConnection::OnUnaryFrame(CallMap::iterator it, DecodedFrame& frame) {
  if (frame.header.type != static_cast<std::uint8_t>(MessageType::kResponse)) {
    Complete(it, ProtocolError(absl::StrFormat("unexpected message type %d on a unary call",
                                               frame.header.type)));
    return;
  }
  absl::StatusOr<std::string> r = ParseResponse(frame.payload);
  if (r.ok()) {
    Complete(it, absl::OkStatus(), *std::move(r));
  } else {
    Complete(it, r.status());
  }
}

void ClientConnection::OnStreamFrame(CallMap::iterator it, DecodedFrame& frame) {
  ClientStreamState& stream = *it->second.call->stream;
  const std::uint8_t flags = frame.header.flags;
  switch (static_cast<MessageType>(frame.header.type)) {
    case MessageType::kResponse: {
      absl::StatusOr<std::string> r = ParseResponse(frame.payload);
      if (r.ok()) stream.Deliver(*std::move(r));
      Complete(it, r.status());
      return;
    }
    case MessageType::kData:
      if (!stream.kind.server_streaming) {
        Complete(it, ProtocolError("received data from non-streaming server"));
        return;
      }
      if ((flags & kFlagRemoteClosed) != 0) {
        if ((flags & kFlagNoData) == 0) stream.Deliver(std::move(frame.payload));
        Complete(it, absl::OkStatus());
        return;
      }
      if (!stream.Deliver(std::move(frame.payload))) {
        Complete(it, absl::ResourceExhaustedError("ttrpc: stream buffer full"));
      }
      return;
    default:
      Complete(it, ProtocolError(absl::StrFormat("unexpected message type %d", frame.header.type)));
  }
}

void ClientConnection::Complete(CallMap::iterator it, absl::Status shared_status,
                                std::string payload) {
  // The status goes to another thread; it may share its rep with others (OnClosed).
  absl::Status status = IsolatedCopy(shared_status);
  Entry entry = std::move(it->second);
  calls_.erase(it);
  UpdatePending();
  if (entry.timer) entry.timer->cancel();
  if (entry.call->stream) {
    entry.call->stream->End(std::move(status));
  } else if (entry.call->done) {
    if (status.ok()) {
      entry.call->done(std::move(payload));
    } else {
      entry.call->done(std::move(status));
    }
  }
}

void ClientConnection::UpdatePending() {
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    pending_ = calls_.size();
  }
  state_cv_.notify_all();
}

void ClientConnection::OnClosed(const absl::Status& reason) {
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    open_ = false;
  }
  const absl::Status failure = absl::UnavailableError(
      absl::StrFormat("ttrpc: connection closed: %s", reason.message()));
  refuse_status_ = failure;
  while (!calls_.empty()) Complete(calls_.begin(), failure);
  spdlog::debug("ttrpc client: connection closed peer={} reason=\"{}\"", peer(), reason.message());
  if (on_disconnect_) on_disconnect_(IsolatedCopy(reason));
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    close_done_ = true;
  }
  state_cv_.notify_all();
}

bool ClientConnection::WaitIdle(std::chrono::steady_clock::time_point until) {
  std::unique_lock<std::mutex> lock(state_mu_);
  // Calls posted before StopAccepting are counted once it has run on the strand.
  return state_cv_.wait_until(
      lock, until, [&] { return (stopped_accepting_ && pending_ == 0) || close_done_; });
}

bool ClientConnection::WaitClosed(std::chrono::steady_clock::time_point until) {
  std::unique_lock<std::mutex> lock(state_mu_);
  return state_cv_.wait_until(lock, until, [&] { return close_done_; });
}

bool ClientConnection::IsOpen() const {
  std::lock_guard<std::mutex> lock(state_mu_);
  return open_;
}

}  // namespace kuasar::ttrpc
