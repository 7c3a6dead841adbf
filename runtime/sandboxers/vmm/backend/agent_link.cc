#include "runtime/sandboxers/vmm/backend/agent_link.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <google/protobuf/empty.pb.h>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/rest/hybrid_vsock.h"
#include "runtime/ttrpc/typed_client.h"

namespace kuasar {
namespace {

constexpr char kSandboxService[] = "kuasar.agent.v1.Sandbox";

absl::StatusOr<UniqueFd> ConnectOnce(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrFormat("socket path too long: %s", path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, "connect", path);
  }
  return fd;
}

}  // namespace

absl::StatusOr<UniqueFd> DialUnix(const std::string& path, absl::Time deadline) {
  absl::Status last;
  while (true) {
    auto fd = ConnectOnce(path);
    if (fd.ok()) return fd;
    last = fd.status();
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::DeadlineExceededError(absl::StrFormat("%s did not accept in time: %s", path,
                                                     last.message()));
}

absl::StatusOr<UniqueFd> DialAgent(const vmm::AgentChannel& ch, absl::Time deadline) {
  using Kind = vmm::AgentChannel::Kind;
  switch (ch.kind) {
    case Kind::kHybridVsock:
      return vmm::DialHybridVsock(ch.path, ch.port, deadline);
    case Kind::kSerialSocket:
    case Kind::kUnix:
      return DialUnix(ch.path, deadline);
    case Kind::kVsock:
      return absl::UnimplementedError("AF_VSOCK dialing is not available on this host");
  }
  return absl::InvalidArgumentError("unknown agent channel");
}

absl::StatusOr<agent::v1::CheckResponse> AgentClient::Check(absl::Duration timeout) {
  ttrpc::CallOptions opts;
  opts.timeout = absl::ToChronoNanoseconds(timeout);
  return ttrpc::CallMethod<agent::v1::CheckResponse>(*client_, kSandboxService, "Check",
                                                     agent::v1::CheckRequest(), opts);
}

absl::StatusOr<agent::v1::CheckResponse> AgentClient::WaitUntilReady(absl::Time deadline) {
  absl::Status last;
  while (absl::Now() < deadline) {
    auto r = Check(std::min(absl::Seconds(2), deadline - absl::Now()));
    if (r.ok()) return r;
    last = r.status();
    if (!client_->IsConnected()) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrFormat("the guest agent never answered: %s", last.message()));
}

absl::Status AgentClient::SetupSandbox(const agent::v1::SetupSandboxRequest& req) {
  ttrpc::CallOptions opts;
  opts.timeout = std::chrono::seconds(30);
  return ttrpc::CallMethod<google::protobuf::Empty>(*client_, kSandboxService, "SetupSandbox",
                                                    req, opts)
      .status();
}

absl::Status AgentClient::SyncClock() {
  agent::v1::SyncClockRequest req;
  req.set_unix_nanos(absl::ToUnixNanos(absl::Now()));
  ttrpc::CallOptions opts;
  opts.timeout = std::chrono::seconds(5);
  return ttrpc::CallMethod<google::protobuf::Empty>(*client_, kSandboxService, "SyncClock", req,
                                                    opts)
      .status();
}

absl::StatusOr<agent::v1::ExecVMProcessResponse> AgentClient::ExecVMProcess(
    const agent::v1::ExecVMProcessRequest& req) {
  ttrpc::CallOptions opts;
  opts.timeout = std::chrono::milliseconds(req.timeout_ms() > 0 ? req.timeout_ms() + 5000 : 60000);
  return ttrpc::CallMethod<agent::v1::ExecVMProcessResponse>(*client_, kSandboxService,
                                                             "ExecVMProcess", req, opts);
}

absl::Status AgentClient::Shutdown(absl::Duration timeout) {
  ttrpc::CallOptions opts;
  opts.timeout = absl::ToChronoNanoseconds(timeout);
  return ttrpc::CallMethod<google::protobuf::Empty>(*client_, kSandboxService, "Shutdown",
                                                    google::protobuf::Empty(), opts)
      .status();
}

}  // namespace kuasar
