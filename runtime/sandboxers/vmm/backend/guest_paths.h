// GuestPaths: the TaskBridge interceptor for a VM that cannot see host paths. containerd's
// Task API requests name host paths; on their way to the agent:
// - Task.Create: the bundle is shared through the pod's shared dir (SharedBundle) and the
//   request names the guest's copy, with no rootfs mounts (they are mounted already);
// - Task.Create/Exec: stdio FIFOs become "kuasar-stream://<token>" (agent.proto), and a
//   StdioPump carries the data once the agent accepted the process;
// - Task.CloseIO(stdin): the pump ends the stdin stream after forwarding what containerd
//   wrote (the agent then closes stdin itself), so the request asks for nothing more;
// - Task.Delete (answered OK): the pumps stop, the container's shared copy is removed.
// The bridge calls it on its io thread; pumps run on their own threads and reach the
// agent through a ttrpc client of their own on the bridge's socket. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "runtime/sandboxers/vmm/backend/stdio_pump.h"
#include "runtime/sandboxers/vmm/bridge/task_bridge.h"
#include "runtime/ttrpc/client.h"

namespace kuasar {

class GuestPaths final : public TaskBridge::Interceptor {
 public:
  // `host_shared` is exported to the guest, which mounts it at `guest_shared`.
  GuestPaths(std::string host_shared, std::string guest_shared);
  ~GuestPaths() override;  // Shutdown()

  // Where the pumps dial the agent (the bridge's task socket).
  void SetAgentSocket(std::string path);

  absl::StatusOr<std::string> OnRequest(const std::string& service, const std::string& method,
                                        std::string payload) override;
  void OnResponse(const std::string& service, const std::string& method,
                  const std::string& request_payload, bool ok) override;

  // Closes the pumps' client (their streams end) and joins every pump. Later Create and
  // Exec requests fail with UNAVAILABLE. Not on the bridge's io thread if the client
  // could still need it; idempotent.
  void Shutdown();

  // Pumps still carrying data (stopped ones count until their threads returned).
  size_t pump_count() const;

 private:
  using Key = std::pair<std::string, std::string>;  // container id, exec id
  absl::StatusOr<std::string> OnCreate(std::string payload);
  absl::StatusOr<std::string> OnExec(std::string payload);
  absl::StatusOr<std::string> OnCloseIO(std::string payload);
  void OnDeleted(const std::string& payload);
  // Tokens for the stdio strings that name host FIFOs, and the pump that will carry them
  // (null when none does); fills the guest's stdio strings.
  absl::StatusOr<std::unique_ptr<StdioPump>> PlanStdio(const Key& key, const std::string& in,
                                                       const std::string& out,
                                                       const std::string& err,
                                                       std::string guest[3]);
  absl::StatusOr<std::shared_ptr<ttrpc::Client>> Client();
  void Retire(std::unique_ptr<StdioPump> pump);  // mu_ held
  void ReapLocked();                             // mu_ held

  const std::string host_shared_, guest_shared_, token_prefix_;
  mutable std::mutex mu_;
  std::string agent_socket_;
  std::shared_ptr<ttrpc::Client> client_;
  bool shut_ = false;
  uint64_t next_token_ = 0;
  std::map<Key, std::unique_ptr<StdioPump>> pending_;  // sent, not yet answered
  std::map<Key, std::unique_ptr<StdioPump>> running_;
  std::vector<std::unique_ptr<StdioPump>> retired_;  // stopped, threads finishing
};

}  // namespace kuasar
