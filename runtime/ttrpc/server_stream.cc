#include "runtime/ttrpc/server_stream.h"

#include <google/protobuf/message_lite.h>

#include <chrono>
#include <utility>

#include "runtime/ttrpc/frame.h"
#include "runtime/ttrpc/handlers.h"
#include "runtime/ttrpc/server_connection.h"
#include "runtime/ttrpc/wire.h"

namespace kuasar::ttrpc {

ServerStream::ServerStream(CallContextPtr ctx, StreamKind kind,
                           std::weak_ptr<ServerConnection> conn,
                           std::shared_ptr<IoLifetime> lifetime,
                           std::shared_ptr<WriteBudget> budget, std::uint32_t stream_id,
                           std::size_t capacity)
    : ctx_(std::move(ctx)),
      kind_(kind),
      conn_(std::move(conn)),
      lifetime_(std::move(lifetime)),
      budget_(std::move(budget)),
      stream_id_(stream_id),
      capacity_(capacity == 0 ? 1 : capacity) {}

bool ServerStream::Recv(std::string* message) {
  std::function<void()> waiter;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !inbound_.empty() || remote_closed_ || aborted_; });
    if (inbound_.empty() || aborted_) return false;
    *message = std::move(inbound_.front());
    inbound_.pop_front();
    waiter = std::move(room_waiter_);
    room_waiter_ = nullptr;
  }
  if (waiter) waiter();
  return true;
}

absl::StatusOr<bool> ServerStream::RecvMessage(google::protobuf::MessageLite* message) {
  std::string bytes;
  if (!Recv(&bytes)) return false;
  if (!message->ParseFromString(bytes)) {
    return absl::InternalError("ttrpc: error unmarshalling payload: cannot parse message");
  }
  return true;
}

absl::Status ServerStream::Send(std::string_view message) {
  if (!kind_.server_streaming) {
    return absl::FailedPreconditionError("ttrpc: cannot send data on a non-streaming server");
  }
  if (message.size() > kMaxMessageSize) return OversizedMessageStatus(message.size());
  auto closed_status = [&] {
    absl::Status why = ctx_->CancelStatus();
    return why.ok() ? absl::FailedPreconditionError("ttrpc: stream closed") : why;
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (aborted_) return closed_status();
  }
  auto until = ctx_->deadline().value_or(std::chrono::steady_clock::now() + std::chrono::hours(1));
  if (!budget_->Wait(until)) return absl::UnavailableError("ttrpc: connection closed");
  bool sent = false;
  lifetime_->Run([&] {
    if (auto conn = conn_.lock()) {
      conn->SendStreamMessage(stream_id_, std::string(message));
      sent = true;
    }
  });
  return sent ? absl::OkStatus() : absl::UnavailableError("ttrpc: connection closed");
}

absl::Status ServerStream::SendMessage(const google::protobuf::MessageLite& message) {
  return Send(message.SerializeAsString());
}

ServerStream::PushResult ServerStream::Push(std::string& message) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (remote_closed_ || aborted_) return PushResult::kClosed;
    if (inbound_.size() >= capacity_) return PushResult::kFull;
    inbound_.push_back(std::move(message));
  }
  cv_.notify_one();
  return PushResult::kOk;
}

void ServerStream::CloseRemote() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    remote_closed_ = true;
  }
  cv_.notify_all();
}

void ServerStream::Abort() {
  std::function<void()> waiter;
  {
    std::lock_guard<std::mutex> lock(mu_);
    aborted_ = true;
    waiter = std::move(room_waiter_);
    room_waiter_ = nullptr;
  }
  cv_.notify_all();
  if (waiter) waiter();
}

void ServerStream::NotifyWhenRoom(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (inbound_.size() >= capacity_ && !aborted_) {
      room_waiter_ = std::move(fn);
      return;
    }
  }
  fn();
}

UnaryResponder::State::~State() {
  if (done.exchange(true)) return;
  ServerConnection::FinishFromAnyThread(conn, *lifetime, stream_id,
                                        absl::InternalError("ttrpc: handler dropped the call"));
}

void UnaryResponder::Finish(absl::StatusOr<std::string> response) const {
  if (!state_ || state_->done.exchange(true)) return;
  ServerConnection::FinishFromAnyThread(state_->conn, *state_->lifetime, state_->stream_id,
                                        std::move(response));
}

bool UnaryResponder::finished() const { return !state_ || state_->done.load(); }

}  // namespace kuasar::ttrpc
