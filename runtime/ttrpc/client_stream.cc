#include "runtime/ttrpc/client_stream.h"

#include <google/protobuf/message_lite.h>

#include <utility>

#include "runtime/ttrpc/client_connection.h"
#include "runtime/ttrpc/frame.h"
#include "runtime/ttrpc/wire.h"

namespace kuasar::ttrpc {
namespace {

// Messages the application has not read yet; past this the stream fails (Go ttrpc closes
// a stream whose consumer stalls, with ErrStreamFull).
constexpr std::size_t kMaxInboundBytes = 64u << 20;

}  // namespace

bool ClientStreamState::Deliver(std::string message) {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (final_status) return true;
    if (inbound_bytes + message.size() > kMaxInboundBytes) return false;
    inbound_bytes += message.size();
    inbound.push_back(std::move(message));
  }
  cv.notify_all();
  return true;
}

void ClientStreamState::End(absl::Status status) {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (final_status) return;
    final_status = std::move(status);
  }
  cv.notify_all();
}

ClientStream::ClientStream(std::shared_ptr<ClientStreamState> state,
                           std::weak_ptr<ClientConnection> conn,
                           std::shared_ptr<IoLifetime> lifetime,
                           std::shared_ptr<WriteBudget> budget)
    : state_(std::move(state)),
      conn_(std::move(conn)),
      lifetime_(std::move(lifetime)),
      budget_(std::move(budget)) {}

ClientStream::~ClientStream() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->final_status) return;
  }
  lifetime_->Run([&] {
    if (auto c = conn_.lock()) c->AbandonStream(state_);
  });
}

absl::Status ClientStream::SendFrame(std::string_view payload, std::uint8_t flags) {
  if (payload.size() > kMaxMessageSize) return OversizedMessageStatus(payload.size());
  auto until = state_->deadline.value_or(std::chrono::steady_clock::now() + std::chrono::hours(1));
  if (!budget_->Wait(until)) return absl::UnavailableError("ttrpc: connection closed");
  bool sent = false;
  lifetime_->Run([&] {
    if (auto c = conn_.lock()) {
      c->SendStreamFrame(state_, EncodeFrame(0, MessageType::kData, flags, payload));
      sent = true;
    }
  });
  return sent ? absl::OkStatus() : absl::UnavailableError("ttrpc: connection closed");
}

absl::Status ClientStream::Send(std::string_view message) {
  if (!state_->kind.client_streaming) {
    return absl::FailedPreconditionError("ttrpc: cannot send data from non-streaming client");
  }
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->local_closed) return absl::FailedPreconditionError("ttrpc: stream closed");
    if (state_->final_status) {
      return state_->final_status->ok() ? absl::FailedPreconditionError("ttrpc: stream closed")
                                        : IsolatedCopy(*state_->final_status);
    }
  }
  return SendFrame(message, 0);
}

absl::Status ClientStream::SendMessage(const google::protobuf::MessageLite& message) {
  return Send(message.SerializeAsString());
}

absl::Status ClientStream::CloseSend() {
  if (!state_->kind.client_streaming) {
    return absl::FailedPreconditionError("ttrpc: cannot close non-streaming client");
  }
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->local_closed) return absl::FailedPreconditionError("ttrpc: stream closed");
    state_->local_closed = true;
    if (state_->final_status) return absl::OkStatus();
  }
  return SendFrame({}, kFlagRemoteClosed | kFlagNoData);
}

bool ClientStream::Recv(std::string* message) {
  std::unique_lock<std::mutex> lock(state_->mu);
  state_->cv.wait(lock, [&] { return !state_->inbound.empty() || state_->final_status; });
  if (state_->inbound.empty()) return false;
  *message = std::move(state_->inbound.front());
  state_->inbound.pop_front();
  state_->inbound_bytes -= message->size();
  return true;
}

absl::StatusOr<bool> ClientStream::RecvMessage(google::protobuf::MessageLite* message) {
  std::string bytes;
  if (!Recv(&bytes)) return false;
  if (!message->ParseFromString(bytes)) {
    return absl::InternalError("ttrpc: cannot parse a stream message");
  }
  return true;
}

absl::Status ClientStream::Finish() {
  bool close_send;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    close_send = state_->kind.client_streaming && !state_->local_closed && !state_->final_status;
  }
  if (close_send) (void)CloseSend();
  std::unique_lock<std::mutex> lock(state_->mu);
  state_->cv.wait(lock, [&] { return state_->final_status.has_value(); });
  state_->inbound.clear();
  state_->inbound_bytes = 0;
  return IsolatedCopy(*state_->final_status);
}

}  // namespace kuasar::ttrpc
