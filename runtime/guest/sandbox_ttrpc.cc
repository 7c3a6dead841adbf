#include "runtime/guest/sandbox_ttrpc.h"

#include <memory>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"
#include "runtime/ttrpc/server_stream.h"
#include "runtime/ttrpc/typed_server.h"

namespace kuasar::guest {
namespace {

template <typename Req, typename Resp>
absl::StatusOr<std::string> Unary(const std::string& payload,
                                  absl::StatusOr<Resp> (SandboxService::*fn)(const Req&),
                                  SandboxService& service) {
  Req req;
  if (!req.ParseFromString(payload)) return ttrpc::UnmarshalError(req.GetTypeName());
  absl::StatusOr<Resp> resp = (service.*fn)(req);
  if (!resp.ok()) return resp.status();
  return resp->SerializeAsString();
}

// Holds one of the `max` stream slots while alive.
class StreamSlot {
 public:
  StreamSlot(std::atomic<int>* active, int max) : active_(active) {
    ok_ = active_->fetch_add(1) < max;
  }
  ~StreamSlot() { active_->fetch_sub(1); }
  bool ok() const { return ok_; }

 private:
  std::atomic<int>* active_;
  bool ok_;
};

}  // namespace

absl::StatusOr<std::string> DispatchSandboxUnary(SandboxService& s, std::string_view method,
                                                 const std::string& payload) {
  using google::protobuf::Empty;
  if (method == "Check") return Unary(payload, &SandboxService::Check, s);
  if (method == "SetupSandbox") return Unary(payload, &SandboxService::SetupSandbox, s);
  if (method == "SyncClock") return Unary(payload, &SandboxService::SyncClock, s);
  if (method == "ExecVMProcess") return Unary(payload, &SandboxService::ExecVMProcess, s);
  if (method == "Shutdown") return Unary(payload, &SandboxService::Shutdown, s);
  return absl::UnimplementedError(absl::StrFormat("method %s", method));
}

absl::Status ServeReadStream(StreamRegistry& streams, const std::string& request,
                             const std::function<absl::Status(const std::string&)>& send,
                             const StreamRegistry::Cancelled& cancelled) {
  agentpb::ReadStreamRequest req;
  if (!req.ParseFromString(request)) return ttrpc::UnmarshalError(req.GetTypeName());
  return streams.Read(
      req.token(),
      [&](std::string_view data) {
        agentpb::StreamChunk chunk;
        chunk.set_data(std::string(data));
        return send(chunk.SerializeAsString());
      },
      cancelled);
}

absl::Status ServeWriteStream(StreamRegistry& streams,
                              const std::function<absl::StatusOr<bool>(std::string*)>& recv,
                              const StreamRegistry::Cancelled& cancelled) {
  auto next_chunk = [&](agentpb::StreamChunk* chunk) -> absl::StatusOr<bool> {
    std::string raw;
    ASSIGN_OR_RETURN(bool more, recv(&raw));
    if (!more) return false;
    if (!chunk->ParseFromString(raw)) return ttrpc::UnmarshalError(chunk->GetTypeName());
    return true;
  };
  agentpb::StreamChunk first;
  ASSIGN_OR_RETURN(bool got, next_chunk(&first));
  if (!got || first.token().empty()) {
    return absl::InvalidArgumentError("WriteStream: the first chunk must name the token");
  }
  std::string token = first.token();
  return streams.Write(
      token, std::move(*first.mutable_data()),
      [&](std::string* data) -> absl::StatusOr<bool> {
        agentpb::StreamChunk c;
        ASSIGN_OR_RETURN(bool more, next_chunk(&c));
        if (!more) return false;
        if (!c.token().empty() && c.token() != token) {
          return absl::InvalidArgumentError("WriteStream: a later chunk names another token");
        }
        *data = std::move(*c.mutable_data());
        return true;
      },
      cancelled);
}

absl::Status RegisterSandboxService(ttrpc::Server& server, const SandboxEndpoints& ep) {
  SandboxService* service = ep.service;
  for (const char* method : {"Check", "SetupSandbox", "SyncClock", "ExecVMProcess", "Shutdown"}) {
    std::string m = method;
    RETURN_IF_ERROR(server.RegisterBlockingUnary(
        kSandboxServiceName, m,
        [service, m](const ttrpc::CallContext&, const std::string& payload) {
          return DispatchSandboxUnary(*service, m, payload);
        }));
  }
  auto active = std::make_shared<std::atomic<int>>(0);
  StreamRegistry* streams = ep.streams;
  int max = ep.max_streams;
  auto busy = [max] {
    return absl::ResourceExhaustedError(absl::StrFormat("more than %d stdio streams at once", max));
  };
  RETURN_IF_ERROR(server.RegisterStream(
      kSandboxServiceName, "ReadStream", {.client_streaming = false, .server_streaming = true},
      [streams, active, max, busy](ttrpc::ServerStream& s) -> absl::StatusOr<std::string> {
        StreamSlot slot(active.get(), max);
        if (!slot.ok()) return busy();
        std::string request;
        if (!s.Recv(&request)) request.clear();  // an empty request is a valid message
        RETURN_IF_ERROR(ServeReadStream(
            *streams, request, [&](const std::string& chunk) { return s.Send(chunk); },
            [&] { return s.context().Cancelled(); }));
        return std::string();
      }));
  return server.RegisterStream(
      kSandboxServiceName, "WriteStream", {.client_streaming = true, .server_streaming = false},
      [streams, active, max, busy](ttrpc::ServerStream& s) -> absl::StatusOr<std::string> {
        StreamSlot slot(active.get(), max);
        if (!slot.ok()) return busy();
        RETURN_IF_ERROR(ServeWriteStream(
            *streams,
            [&](std::string* raw) -> absl::StatusOr<bool> {
              if (s.Recv(raw)) return true;
              if (s.context().Cancelled()) return s.context().CancelStatus();
              return false;
            },
            [&] { return s.context().Cancelled(); }));
        return google::protobuf::Empty().SerializeAsString();
      });
}

}  // namespace kuasar::guest
