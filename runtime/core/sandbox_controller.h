// SandboxController: the one implementation of the sandbox lifecycle. The gRPC sandbox
// API, the Python module and the harness all call it; they only translate.
// It owns the records (persisted in a StateStore at every state change), orders the
// backend calls, recovers every sandbox on start, and answers Wait asynchronously.
// Thread-safe: lifecycle calls on one sandbox are serialized by its own lock; different
// sandboxes proceed in parallel; no lock is held while a backend call blocks.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/base/unique_fd.h"
#include "runtime/core/sandbox_backend.h"
#include "runtime/core/sandbox_record.h"
#include "runtime/core/state_store.h"

namespace kuasar {

struct CreateSandboxRequest {
  std::string id;
  std::string sandboxer;
  std::vector<MountSpec> rootfs;
  std::string netns_path;
  std::map<std::string, std::string> annotations;
  std::map<std::string, std::string> labels;
  std::string spec_type_url;
  std::string spec_json;
  std::string options_type_url;
  std::string options_bytes;
};

struct StartSandboxResult {
  uint32_t pid = 0;
  absl::Time created_at;
  std::string address;
  uint32_t version = 3;
  std::map<std::string, std::string> labels;
};

struct SandboxStatusInfo {
  std::string id;
  uint32_t pid = 0;
  SandboxState state = SandboxState::kCreated;
  std::map<std::string, std::string> info;
  absl::Time created_at;
  absl::Time exited_at;
  std::string address;
  uint32_t version = 3;
};

struct SandboxExit {
  uint32_t exit_status = 0;
  absl::Time exited_at;
};

struct RecoveryReport {
  int recovered_running = 0;
  int recovered_stopped = 0;  // includes sandboxes that died while we were down
  int cleaned_up = 0;         // half-created sandboxes removed
  int quarantined = 0;
};

class SandboxController : public SandboxExitSink {
 public:
  using WaitCallback = std::function<void(absl::StatusOr<SandboxExit>)>;

  // Opens <state_dir>/records and <state_dir>/sandboxes and initializes the backend.
  // `events` and `task_endpoints` are handed to the backend (may be null in tests).
  static absl::StatusOr<std::unique_ptr<SandboxController>> Create(
      const Config& config, std::unique_ptr<SandboxBackend> backend,
      EventPublisher* events = nullptr, TaskEndpoints* task_endpoints = nullptr);
  ~SandboxController() override;

  // Loads every record and reconciles it with reality (see RecoveryReport).
  absl::StatusOr<RecoveryReport> Recover();

  absl::Status CreateSandbox(const CreateSandboxRequest& request);
  absl::StatusOr<StartSandboxResult> StartSandbox(std::string_view id);
  // Answers for any valid id, and for an empty one (a health check).
  absl::StatusOr<PlatformInfo> Platform(std::string_view id) const;
  absl::Status StopSandbox(std::string_view id, absl::Duration timeout);
  // Calls `done` once the sandbox has stopped (maybe immediately, maybe from another
  // thread). NOT_FOUND at once for an unknown id.
  void WaitSandbox(std::string_view id, WaitCallback done);
  absl::StatusOr<SandboxStatusInfo> Status(std::string_view id, bool verbose) const;
  absl::Status ShutdownSandbox(std::string_view id);
  absl::StatusOr<MetricSample> Metrics(std::string_view id) const;
  // Applies containerd's Update for the named fields ("labels", "extensions", "spec").
  absl::Status UpdateSandbox(std::string_view id, const std::map<std::string, std::string>& labels,
                             const std::vector<std::string>& fields);

  // For backends: change a record's backend state outside a lifecycle call, persisted.
  absl::Status MutateRecord(std::string_view id, const std::function<void(SandboxRecord&)>& fn);
  absl::StatusOr<SandboxRecord> GetRecord(std::string_view id) const;
  std::vector<std::string> ListIds() const;

  // SandboxExitSink
  void OnSandboxExit(std::string_view id, uint32_t exit_status, absl::Time at) override;

  SandboxBackend& backend() { return *backend_; }
  const Config& config() const { return config_; }

 private:
  struct Entry {
    std::mutex op_mu;  // serializes lifecycle calls on this sandbox
    std::mutex mu;     // guards record and waiters
    SandboxRecord record;
    std::vector<WaitCallback> waiters;
    bool removed = false;
  };

  SandboxController(Config config, StateStore store, std::unique_ptr<SandboxBackend> backend,
                    std::string sandboxes_dir);
  std::shared_ptr<Entry> Find(std::string_view id) const;
  absl::StatusOr<std::shared_ptr<Entry>> Get(std::string_view id) const;
  // Stores `record` in the entry and on disk; returns the waiters to notify if it stopped.
  absl::Status Commit(Entry& entry, const SandboxRecord& record);
  void MarkStopped(Entry& entry, uint32_t exit_status, absl::Time at);
  void NotifyWaiters(Entry& entry);

  Config config_;
  // flock on <state_dir>/lock: one daemon per state dir.
  UniqueFd state_lock_;
  StateStore store_;
  std::unique_ptr<SandboxBackend> backend_;
  std::string sandboxes_dir_;
  mutable std::mutex map_mu_;
  std::map<std::string, std::shared_ptr<Entry>, std::less<>> sandboxes_;
};

}  // namespace kuasar
