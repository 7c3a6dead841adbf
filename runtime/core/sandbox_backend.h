// SandboxBackend: what one sandbox kind (runc, vmm, wasm, appkernel) implements. The
// SandboxController owns records, persistence, ordering and waiters; a backend only makes
// and unmakes the sandbox itself. Calls for one sandbox are serialized by the controller;
// calls for different sandboxes run concurrently, so a backend guards its shared state.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/core/config.h"
#include "runtime/core/event_publisher.h"
#include "runtime/core/task_endpoints.h"
#include "runtime/core/sandbox_record.h"

namespace kuasar {

struct PlatformInfo {
  std::string os = "linux";
  std::string architecture;  // GOARCH name: amd64, arm64, ...
  std::string variant;
};
// The host's platform in containerd's (Go's) naming.
PlatformInfo HostPlatform();

struct MetricSample {
  std::string type_url;  // e.g. io.containerd.cgroups.v1.Metrics
  std::string value;     // serialized message
};

// How a backend reports that a running sandbox died on its own (holder killed, VMM
// crashed). May be called from any thread, once per exit.
class SandboxExitSink {
 public:
  virtual ~SandboxExitSink() = default;
  virtual void OnSandboxExit(std::string_view id, uint32_t exit_status, absl::Time at) = 0;
};

struct BackendContext {
  const Config* config = nullptr;
  // Root for per-sandbox runtime files: <state_dir>/sandboxes/<id>/ is the sandbox's own.
  std::string sandboxes_dir;
  SandboxExitSink* exit_sink = nullptr;
  // Persists a change to a sandbox's record outside a lifecycle call (container state).
  std::function<absl::Status(std::string_view id, const std::function<void(SandboxRecord&)>&)>
      mutate_record;
  // Set by the daemon; null in tests that drive backends directly.
  EventPublisher* events = nullptr;
  TaskEndpoints* task_endpoints = nullptr;
};

class SandboxBackend {
 public:
  virtual ~SandboxBackend() = default;

  virtual std::string_view Kind() const = 0;
  virtual absl::Status Init(const BackendContext& context) = 0;
  virtual PlatformInfo Platform() const { return HostPlatform(); }

  // Prepares the sandbox; on error the controller calls Cleanup on the same record.
  virtual absl::Status Create(SandboxRecord& record) = 0;
  // Brings it up; sets record.pid and record.task_address.
  virtual absl::Status Start(SandboxRecord& record) = 0;
  // Stops everything running, gracefully up to `timeout`, then by force. After it
  // returns OK nothing of the sandbox runs. Must tolerate a sandbox already dead.
  virtual absl::Status Stop(SandboxRecord& record, absl::Duration timeout) = 0;
  // Releases every resource (files, sockets, mounts, cgroups). Idempotent.
  virtual absl::Status Cleanup(SandboxRecord& record) = 0;
  // After a daemon restart: reattach to a sandbox the record says is running. Returns
  // NOT_FOUND when it is gone (the controller then records the exit).
  virtual absl::Status Recover(SandboxRecord& record) = 0;
  virtual absl::StatusOr<MetricSample> Metrics(const SandboxRecord& record) = 0;
  // Extra keys for Status(verbose); the controller fills pid/state/times itself.
  virtual void DescribeStatus(const SandboxRecord& record, bool verbose,
                              std::map<std::string, std::string>* info) const {
    (void)record, (void)verbose, (void)info;
  }
};

}  // namespace kuasar
