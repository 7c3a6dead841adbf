#include "runtime/sandboxers/vmm/conformance/agent_dial.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/rest/hybrid_vsock.h"
#include "runtime/ttrpc/client.h"
#include "runtime/ttrpc/typed_client.h"

namespace kuasar::vmm {
namespace {

absl::StatusOr<UniqueFd> DialUnixOnce(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return absl::InvalidArgumentError("path too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return absl::UnavailableError(absl::StrFormat("connect %s failed", path));
  }
  return fd;
}

absl::StatusOr<UniqueFd> Dial(const AgentChannel& channel, absl::Time deadline) {
  switch (channel.kind) {
    case AgentChannel::Kind::kHybridVsock:
      return ConnectHybridVsockOnce(channel.path, channel.port,
                                    std::max(deadline - absl::Now(), absl::Milliseconds(1)));
    case AgentChannel::Kind::kSerialSocket:
    case AgentChannel::Kind::kUnix:
      return DialUnixOnce(channel.path);
    case AgentChannel::Kind::kVsock:
      break;
  }
  return absl::UnimplementedError("AF_VSOCK is not available here");
}

}  // namespace

absl::StatusOr<agent::v1::CheckResponse> CheckAgent(const AgentChannel& channel,
                                                    absl::Time deadline) {
  absl::Status last = absl::DeadlineExceededError("no time to try");
  while (absl::Now() < deadline) {
    auto fd = Dial(channel, deadline);
    if (fd.ok()) {
      auto client = ttrpc::Client::FromFd(std::move(*fd));
      if (!client.ok()) return client.status();
      ttrpc::CallOptions opts;
      // A serial port holds the bytes until the guest is up: the call itself waits.
      opts.timeout =
          absl::ToChronoNanoseconds(std::max(deadline - absl::Now(), absl::Milliseconds(1)));
      auto r = ttrpc::CallMethod<agent::v1::CheckResponse>(
          **client, "kuasar.agent.v1.Sandbox", "Check", agent::v1::CheckRequest(), opts);
      if (r.ok()) return r;
      last = r.status();
    } else {
      last = fd.status();
      if (!absl::IsUnavailable(last) && !absl::IsDeadlineExceeded(last)) return last;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrFormat("agent at %s did not answer Check: %s", channel.path, last.message()));
}

}  // namespace kuasar::vmm
