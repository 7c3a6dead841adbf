// Test support: runs the real vmm-task binary (optionally under a wrapper such as
// `unshare --fork --pid --mount`), with its socket and state in a fresh TempDir and its
// log captured, and connects a ttrpc client to it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/base/child_process.h"
#include "runtime/base/temp_dir.h"
#include "runtime/ttrpc/client.h"
#include "runtime/ttrpc/typed_client.h"

namespace kuasar::guest::testing {

std::string VmmTaskPath();
// Why the agent cannot run here ("" if it can): it needs runc or crun on PATH.
std::string AgentUnavailableReason();

struct AgentProcessOptions {
  std::string init = "none";
  std::vector<std::string> wrapper;     // e.g. {"unshare", "--fork", "--pid", "--mount"}
  std::vector<std::string> extra_args;  // more vmm-task flags
  std::vector<std::pair<int, int>> inherit_fds;
  bool listen_unix = true;  // --listen unix:<dir>/agent.sock, client connected
};

class AgentProcess {
 public:
  static absl::StatusOr<std::unique_ptr<AgentProcess>> Start(AgentProcessOptions options);
  // SIGTERMs and reaps the agent if still running.
  ~AgentProcess();

  ttrpc::Client& client() { return *client_; }
  const TempDir& dir() const { return dir_; }
  std::string socket_path() const { return dir_.Sub("agent.sock"); }
  std::string state_dir() const { return dir_.Sub("state"); }
  // The agent's pid as this process sees it (the wrapper's child when wrapped).
  absl::StatusOr<pid_t> AgentPid() const;
  // SIGTERM to the agent; its exit code (or the wrapper's).
  absl::StatusOr<int> Stop(absl::Duration timeout = absl::Seconds(15));
  std::string Log() const;

 private:
  AgentProcess() = default;
  TempDir dir_{"kuasar-agent"};
  std::optional<ChildProcess> child_;
  std::unique_ptr<ttrpc::Client> client_;
};

template <typename Resp, typename Req>
absl::StatusOr<Resp> Call(ttrpc::Client& client, std::string_view service, std::string_view method,
                          const Req& req, absl::Duration timeout = absl::Seconds(20)) {
  ttrpc::CallOptions o;
  o.timeout = absl::ToChronoNanoseconds(timeout);
  o.metadata.emplace("containerd-namespace-ttrpc", "k8s.io");
  return ttrpc::CallMethod<Resp>(client, service, method, req, o);
}

}  // namespace kuasar::guest::testing
