#include "runtime/ttrpc/server_connection.h"

#include <exception>
#include <utility>

#include <boost/asio/bind_executor.hpp>

#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "runtime/ttrpc/wire.h"
#include "ttrpc/request.pb.h"

#include <spdlog/spdlog.h>

namespace kuasar::ttrpc {
namespace {

// Longer timeouts are treated as this, so time_point arithmetic cannot overflow.
constexpr std::chrono::nanoseconds kMaxTimeout = std::chrono::hours(24 * 365 * 10);

absl::Status DataError(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrFormat("data handling error: %s", what));
}

absl::StatusOr<std::string> RunHandler(const std::function<absl::StatusOr<std::string>()>& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrFormat("ttrpc: handler threw: %s", e.what()));
  } catch (...) {
    return absl::InternalError("ttrpc: handler threw");
  }
}

}  // namespace

ServerConnection::ServerConnection(boost::asio::io_context& io, UniqueFd fd,
                                   std::shared_ptr<ServerCore> core, std::string tag,
                                   std::function<void(const absl::Status&)> on_closed)
    : FramedConnection(io, std::move(fd),
                       Options{core->limits().partial_frame_timeout, "ttrpc server"}),
      core_(std::move(core)),
      tag_(std::move(tag)),
      on_closed_(std::move(on_closed)),
      stream_full_timer_(strand()) {}

ServerConnection::~ServerConnection() { core_->RemoveConnection(this); }

std::shared_ptr<ServerConnection> ServerConnection::self() {
  return std::static_pointer_cast<ServerConnection>(shared_from_this());
}

void ServerConnection::FinishCall(std::uint32_t stream_id, absl::Status status,
                                  std::string payload) {
  if (RunningOnStrand()) {
    // A handler answering inline (or a cancel callback): no need for another hop.
    DoFinish(stream_id, status, payload);
    return;
  }
  Post([self = self(), stream_id, status = std::move(status), payload = std::move(payload)] {
    self->DoFinish(stream_id, status, payload);
  });
}

void ServerConnection::FinishFromAnyThread(const std::weak_ptr<ServerConnection>& weak,
                                           IoLifetime& lifetime, std::uint32_t stream_id,
                                           absl::StatusOr<std::string> result) {
  lifetime.Run([&] {
    if (auto c = weak.lock()) {
      c->FinishCall(stream_id, IsolatedCopy(result.status()),
                    result.ok() ? *std::move(result) : "");
    }
  });
}

void ServerConnection::SendStreamMessage(std::uint32_t stream_id, std::string payload) {
  Post([self = self(), stream_id, payload = std::move(payload)] {
    if (self->closed() || self->calls_.count(stream_id) == 0) return;
    self->Send(EncodeFrame(stream_id, MessageType::kData, 0, payload));
  });
}

void ServerConnection::Drain() {
  Post([self = self()] {
    self->draining_ = true;
    self->MaybeCloseDrained();
  });
}

void ServerConnection::ForceClose(absl::Status reason) {
  Post([self = self(), reason = std::move(reason)] { self->Close(reason); });
}

bool ServerConnection::OnFrame(DecodedFrame& frame) {
  const FrameHeader& h = frame.header;
  // Go ttrpc server.go: the oversized check, then odd ids, then the type switch.
  if (frame.oversized) {
    SendStatus(h.stream_id, OversizedMessageStatus(h.length));
    return true;
  }
  if (h.stream_id % 2 != 1) {
    SendStatus(h.stream_id, absl::InvalidArgumentError(
                                "StreamID must be odd for client initiated streams"));
    return true;
  }
  switch (static_cast<MessageType>(h.type)) {
    case MessageType::kData:
      return HandleData(frame);
    case MessageType::kRequest:
      HandleRequest(frame);
      return true;
    default:
      // Unknown types are ignored for forward compatibility, as Go does.
      spdlog::debug("ttrpc server: ignoring frame type={} stream={} peer={}", h.type,
                    h.stream_id, peer());
      return true;
  }
}

void ServerConnection::Replay(std::uint32_t stream_id, std::string request) {
  Post([self = self(), stream_id, request = std::move(request)]() mutable {
    DecodedFrame frame;
    frame.header.stream_id = stream_id;
    frame.header.type = static_cast<std::uint8_t>(MessageType::kRequest);
    frame.payload = std::move(request);
    self->HandleRequest(frame, /*replayed=*/true);
  });
}

void ServerConnection::HandleRequest(DecodedFrame& frame, bool replayed) {
  const std::uint32_t id = frame.header.stream_id;
  if (replayed) {
    // The peer already sent this id to our predecessor; its next ids are higher still.
    // last_stream_id_ is left alone: we only learn the peer's position from live frames.
    if (calls_.contains(id)) return;
  } else if (id <= last_stream_id_) {
    SendStatus(id, absl::InvalidArgumentError("StreamID cannot be re-used and must increment"));
    return;
  } else {
    last_stream_id_ = id;
  }
  ::ttrpc::Request req;
  if (!req.ParseFromString(frame.payload)) {
    SendStatus(id, absl::InvalidArgumentError(
                       "unmarshal request error: cannot parse invalid wire-format data"));
    return;
  }
  absl::StatusOr<std::shared_ptr<const MethodEntry>> entry =
      core_->Lookup(req.service(), req.method());
  if (!entry.ok()) {
    SendStatus(id, entry.status());
    return;
  }
  Metadata metadata;
  for (const auto& kv : req.metadata()) metadata.emplace(kv.key(), kv.value());
  std::optional<CallContext::Clock::time_point> deadline;
  if (req.timeout_nano() != 0) {
    auto timeout = std::chrono::nanoseconds(req.timeout_nano());
    if (timeout > kMaxTimeout) timeout = kMaxTimeout;
    if (timeout.count() < 0) timeout = std::chrono::nanoseconds(0);
    deadline = CallContext::Clock::now() + timeout;
  }
  auto ctx = std::make_shared<CallContext>(std::move(*req.mutable_service()),
                                           std::move(*req.mutable_method()),
                                           std::move(metadata), deadline);
  ctx->SetOrigin(tag_, id);
  StartCall(id, frame.header.flags, std::move(*entry), std::move(ctx),
            std::move(*req.mutable_payload()));
}

void ServerConnection::StartCall(std::uint32_t id, std::uint8_t flags,
                                 std::shared_ptr<const MethodEntry> entry, CallContextPtr ctx,
                                 std::string payload) {
  ActiveCall call;
  call.ctx = ctx;
  if (entry->kind == MethodEntry::Kind::kStream) {
    const StreamKind kind = entry->stream_kind;
    call.server_streaming = kind.server_streaming;
    call.stream = std::make_shared<ServerStream>(ctx, kind, self(), core_->lifetime(),
                                                 write_budget(), id,
                                                 core_->limits().stream_buffer);
    // Go services.go: the request payload is the first message unless the client
    // streams and sent none (an empty message is indistinguishable here).
    if (!kind.client_streaming || !payload.empty()) call.stream->Push(payload);
    if (!kind.client_streaming || (flags & kFlagRemoteOpen) == 0) call.stream->CloseRemote();
  }
  if (auto deadline = ctx->deadline()) {
    call.deadline_timer = std::make_unique<boost::asio::steady_timer>(strand());
    call.deadline_timer->expires_at(*deadline);
    call.deadline_timer->async_wait(boost::asio::bind_executor(
        strand(), [self = self(), id](const boost::system::error_code& ec) {
          if (!ec) self->OnDeadline(id);
        }));
  }
  std::shared_ptr<ServerStream> stream = call.stream;
  calls_.emplace(id, std::move(call));

  std::weak_ptr<ServerConnection> weak = self();
  std::shared_ptr<IoLifetime> lifetime = core_->lifetime();
  switch (entry->kind) {
    case MethodEntry::Kind::kUnary: {
      UnaryResponder responder(std::make_shared<UnaryResponder::State>(weak, lifetime, id));
      try {
        entry->unary(ctx, std::move(payload), responder);
      } catch (const std::exception& e) {
        responder.Finish(absl::InternalError(absl::StrFormat("ttrpc: handler threw: %s", e.what())));
      }
      return;
    }
    case MethodEntry::Kind::kBlockingUnary: {
      bool queued =
          core_->RunOnWorker([weak, lifetime, entry, ctx, id, payload = std::move(payload)] {
            if (ctx->Cancelled()) return;  // already answered (deadline) or nobody to answer
            absl::StatusOr<std::string> r =
                RunHandler([&] { return entry->blocking(*ctx, payload); });
            FinishFromAnyThread(weak, *lifetime, id, std::move(r));
          });
      if (!queued) DoFinish(id, absl::UnavailableError("ttrpc: server is shutting down"), "");
      return;
    }
    case MethodEntry::Kind::kStream: {
      bool queued = core_->RunOnWorker([weak, lifetime, entry, stream, id] {
        absl::StatusOr<std::string> r = RunHandler([&] { return entry->stream(*stream); });
        FinishFromAnyThread(weak, *lifetime, id, std::move(r));
      });
      if (!queued) DoFinish(id, absl::UnavailableError("ttrpc: server is shutting down"), "");
      return;
    }
  }
}

bool ServerConnection::HandleData(DecodedFrame& frame) {
  const std::uint32_t id = frame.header.stream_id;
  const std::uint8_t flags = frame.header.flags;
  auto it = calls_.find(id);
  if (it == calls_.end()) {
    SendStatus(id, absl::InvalidArgumentError("StreamID is no longer active"));
    return true;
  }
  ServerStream* stream = it->second.stream.get();
  if (stream == nullptr) {  // data on a unary call (Go would crash here)
    SendStatus(id, DataError("ttrpc: stream closed"));
    return true;
  }
  if ((flags & kFlagNoData) == 0) {
    switch (stream->Push(frame.payload)) {
      case ServerStream::PushResult::kOk:
        break;
      case ServerStream::PushResult::kClosed:
        SendStatus(id, DataError("ttrpc: stream closed"));
        return true;
      case ServerStream::PushResult::kFull: {
        // Go waits up to a second for the handler to drain, blocking this connection's
        // reads meanwhile, then fails the stream.
        const std::uint64_t gen = ++blocked_gen_;
        blocked_ = std::move(frame);
        std::weak_ptr<ServerConnection> weak = self();
        stream->NotifyWhenRoom([weak, lifetime = core_->lifetime(), gen] {
          lifetime->Run([&] {
            if (auto c = weak.lock()) c->Post([c, gen] { c->OnStreamRoom(gen); });
          });
        });
        stream_full_timer_.expires_after(core_->limits().stream_full_wait);
        stream_full_timer_.async_wait(boost::asio::bind_executor(
            strand(), [self = self(), gen](const boost::system::error_code& ec) {
              if (!ec) self->OnStreamFullTimeout(gen);
            }));
        return false;
      }
    }
  }
  if ((flags & kFlagRemoteClosed) != 0) {
    stream->CloseRemote();
    if (!frame.payload.empty()) {
      SendStatus(id, absl::InvalidArgumentError("data close message cannot include data"));
    }
  }
  return true;
}

void ServerConnection::OnStreamRoom(std::uint64_t gen) {
  if (closed() || gen != blocked_gen_ || !blocked_) return;
  stream_full_timer_.cancel();
  DecodedFrame frame = std::move(*blocked_);
  blocked_.reset();
  if (HandleData(frame)) ResumeReading();
}

void ServerConnection::OnStreamFullTimeout(std::uint64_t gen) {
  if (closed() || gen != blocked_gen_ || !blocked_) return;
  const std::uint32_t id = blocked_->header.stream_id;
  blocked_.reset();
  ++blocked_gen_;
  SendStatus(id, DataError("ttrpc: stream buffer full"));
  ResumeReading();
}

void ServerConnection::SendStatus(std::uint32_t id, const absl::Status& status) {
  auto it = calls_.find(id);
  if (it != calls_.end()) EndCall(it, status);
  Send(EncodeResponseFrame(id, status));
  MaybeCloseDrained();
}

void ServerConnection::EndCall(CallMap::iterator it, const absl::Status& reason) {
  ActiveCall call = std::move(it->second);
  calls_.erase(it);
  if (call.deadline_timer) call.deadline_timer->cancel();
  if (reason.ok()) {
    call.ctx->MarkFinished();
  } else {
    call.ctx->Cancel(reason);
  }
  if (call.stream) call.stream->Abort();
}

void ServerConnection::DoFinish(std::uint32_t id, const absl::Status& status,
                                const std::string& payload) {
  if (closed()) return;
  auto it = calls_.find(id);
  if (it == calls_.end()) return;  // already ended: deadline, error status, or closed
  const bool server_streaming = it->second.server_streaming;
  EndCall(it, absl::OkStatus());
  if (status.ok() && server_streaming) {
    // Go: respond(..., streaming=true, closeStream=true) sends a closing Data frame.
    if (payload.size() > kMaxMessageSize) {
      Send(EncodeResponseFrame(id, OversizedMessageStatus(payload.size())));
    } else {
      std::uint8_t flags = kFlagRemoteClosed | (payload.empty() ? kFlagNoData : 0);
      Send(EncodeFrame(id, MessageType::kData, flags, payload));
    }
  } else {
    Send(EncodeResponseFrame(id, status, payload));
  }
  MaybeCloseDrained();
}

void ServerConnection::OnDeadline(std::uint32_t id) {
  if (closed()) return;
  auto it = calls_.find(id);
  if (it == calls_.end()) return;
  // Go hands the handler an expired context; its error becomes this status. We answer
  // for the handler so a parked call cannot outlive its deadline.
  SendStatus(id, absl::DeadlineExceededError("context deadline exceeded"));
}

void ServerConnection::MaybeCloseDrained() {
  if (draining_ && calls_.empty()) {
    CloseAfterFlush(absl::UnavailableError("server shutting down"));
  }
}

void ServerConnection::OnClosed(const absl::Status& reason) {
  CallMap calls = std::move(calls_);
  calls_.clear();
  const absl::Status cancel = absl::CancelledError(
      absl::StrFormat("ttrpc: connection closed: %s", reason.message()));
  for (auto& [id, call] : calls) {
    if (call.deadline_timer) call.deadline_timer->cancel();
    call.ctx->Cancel(cancel);
    if (call.stream) call.stream->Abort();
  }
  blocked_.reset();
  ++blocked_gen_;
  stream_full_timer_.cancel();
  spdlog::debug("ttrpc server: connection closed peer={} calls_cancelled={} reason=\"{}\"",
                peer(), calls.size(), reason.message());
  // Before the connection counts as gone, so Server::Shutdown outwaits the callback.
  if (auto fn = std::move(on_closed_)) fn(reason);
  core_->RemoveConnection(this);
}

}  // namespace kuasar::ttrpc
