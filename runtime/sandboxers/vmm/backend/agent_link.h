// Reaching a pod's guest agent (vmm-task) from the host: dialing its channel (hybrid vsock
// "CONNECT <port>", a virtio-serial socket, a plain unix socket) and the typed calls of
// the agent's Sandbox service over ttrpc. Blocking; thread-safe (the ttrpc client is).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kuasar/agent/v1/agent.pb.h"
#include "runtime/base/unique_fd.h"
#include "runtime/sandboxers/vmm/hypervisor.h"
#include "runtime/ttrpc/client.h"

namespace kuasar {

// Connects to a unix socket, retrying until `deadline` (the VMM may not listen yet).
absl::StatusOr<UniqueFd> DialUnix(const std::string& path, absl::Time deadline);
// A stream to the agent for `channel` (not kSerialSocket's bridge: its raw stream); hybrid
// vsock through vmm/rest/hybrid_vsock.h, which the CH and FC drivers use too.
absl::StatusOr<UniqueFd> DialAgent(const vmm::AgentChannel& channel, absl::Time deadline);

class AgentClient {
 public:
  explicit AgentClient(std::unique_ptr<ttrpc::Client> client) : client_(std::move(client)) {}

  // Polls Check until the agent answers or `deadline` passes.
  absl::StatusOr<agent::v1::CheckResponse> WaitUntilReady(absl::Time deadline);
  absl::StatusOr<agent::v1::CheckResponse> Check(absl::Duration timeout = absl::Seconds(5));
  absl::Status SetupSandbox(const agent::v1::SetupSandboxRequest& req);
  absl::Status SyncClock();
  absl::StatusOr<agent::v1::ExecVMProcessResponse> ExecVMProcess(
      const agent::v1::ExecVMProcessRequest& req);
  absl::Status Shutdown(absl::Duration timeout);
  ttrpc::Client& client() { return *client_; }

 private:
  std::unique_ptr<ttrpc::Client> client_;
};

}  // namespace kuasar
