// FakeBackend: an in-memory SandboxBackend for controller, server and benchmark tests.
// Every call can be made to fail; "running" sandboxes are just ids, and Exit() plays a
// sandbox dying on its own. Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>

#include "runtime/core/sandbox_backend.h"

namespace kuasar {

class FakeBackend final : public SandboxBackend {
 public:
  std::string_view Kind() const override { return "fake"; }
  absl::Status Init(const BackendContext& context) override;
  absl::Status Create(SandboxRecord& record) override;
  absl::Status Start(SandboxRecord& record) override;
  absl::Status Stop(SandboxRecord& record, absl::Duration timeout) override;
  absl::Status Cleanup(SandboxRecord& record) override;
  absl::Status Recover(SandboxRecord& record) override;
  absl::StatusOr<MetricSample> Metrics(const SandboxRecord& record) override;

  // Makes the named operation ("create", "start", "stop", "cleanup", "recover") fail.
  void FailNext(const std::string& op, absl::Status status);
  // A running sandbox dies with `code`, reported through the exit sink.
  void Exit(const std::string& id, uint32_t code);
  // Pretends the sandbox died while the daemon was down (Recover will say NOT_FOUND).
  void Vanish(const std::string& id);

  bool IsRunning(const std::string& id) const;
  bool HasResources(const std::string& id) const;
  int calls(const std::string& op) const;

 private:
  absl::Status Take(const std::string& op);

  mutable std::mutex mu_;
  SandboxExitSink* sink_ = nullptr;
  std::set<std::string> created_, running_;
  std::map<std::string, absl::Status> fail_next_;
  std::map<std::string, int> calls_;
};

}  // namespace kuasar
