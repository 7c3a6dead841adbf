// SandboxService: the agent's own API (kuasar.agent.v1.Sandbox) minus the stdio streams:
// Check, SetupSandbox, SyncClock, ExecVMProcess and Shutdown, protocol-free. Effects go
// through a GuestSystem, and GuestCapabilities say which of them this mode may have: an
// agent that shares the host's kernel clock or network must not change them.
// Thread-safe.
#pragma once

#include <google/protobuf/empty.pb.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kuasar/agent/v1/agent.pb.h"
#include "runtime/guest/guest_system.h"

namespace kuasar::guest {

namespace agentpb = ::kuasar::agent::v1;

struct GuestCapabilities {
  bool set_hostname = false;       // we have our own UTS namespace
  bool configure_network = false;  // our own network namespace: links, routes, sysctls
  bool set_clock = false;          // our own kernel (a VM): SyncClock sets it
};

struct SandboxServiceOptions {
  GuestCapabilities caps;
  // Where hostname, hosts and resolv.conf are written: /etc in a VM; <state>/etc when
  // the guest's root is the host's (the task service binds them into containers).
  std::string etc_dir;
  // uptime_ns counts from boot (CLOCK_BOOTTIME) rather than from the agent's start.
  bool uptime_from_boot = false;
  // Kills and deletes every container (Shutdown, before exiting).
  std::function<void()> stop_containers;
  // Asks the agent to exit (and a VM to power off) once the reply is out.
  std::function<void()> request_exit;
};

inline constexpr int64_t kMaxExecTimeoutMs = 10 * 60 * 1000;
inline constexpr int64_t kDefaultExecTimeoutMs = 30 * 1000;
inline constexpr size_t kExecOutputLimit = 1 << 20;

class SandboxService {
 public:
  SandboxService(GuestSystem* system, SandboxServiceOptions options);

  // Records /proc/uptime as the moment the agent became ready (ready_after_boot_ns).
  void MarkReady();

  absl::StatusOr<agentpb::CheckResponse> Check(const agentpb::CheckRequest& req);
  absl::StatusOr<google::protobuf::Empty> SetupSandbox(const agentpb::SetupSandboxRequest& req);
  absl::StatusOr<google::protobuf::Empty> SyncClock(const agentpb::SyncClockRequest& req);
  absl::StatusOr<agentpb::ExecVMProcessResponse> ExecVMProcess(
      const agentpb::ExecVMProcessRequest& req);
  absl::StatusOr<google::protobuf::Empty> Shutdown(const google::protobuf::Empty& req);

 private:
  absl::Status ApplySysctls(const agentpb::SetupSandboxRequest& req);
  absl::Status ApplyNetwork(const agentpb::SetupSandboxRequest& req);

  GuestSystem* system_;
  const SandboxServiceOptions options_;
  const absl::Time started_ = absl::Now();
  std::mutex mu_;  // one SetupSandbox at a time
  std::atomic<int64_t> ready_after_boot_ns_{0};
};

}  // namespace kuasar::guest
