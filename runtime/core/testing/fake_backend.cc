#include "runtime/core/testing/fake_backend.h"

#include "absl/strings/str_cat.h"

namespace kuasar {

absl::Status FakeBackend::Init(const BackendContext& context) {
  std::lock_guard<std::mutex> l(mu_);
  sink_ = context.exit_sink;
  return absl::OkStatus();
}

absl::Status FakeBackend::Take(const std::string& op) {
  ++calls_[op];
  auto it = fail_next_.find(op);
  if (it == fail_next_.end()) return absl::OkStatus();
  absl::Status st = it->second;
  fail_next_.erase(it);
  return st;
}

absl::Status FakeBackend::Create(SandboxRecord& record) {
  std::lock_guard<std::mutex> l(mu_);
  created_.insert(record.id);  // resources exist even if the step then fails
  return Take("create");
}

absl::Status FakeBackend::Start(SandboxRecord& record) {
  std::lock_guard<std::mutex> l(mu_);
  if (absl::Status st = Take("start"); !st.ok()) return st;
  running_.insert(record.id);
  record.pid = 4242;
  record.task_address = absl::StrCat("ttrpc+unix:///fake/", record.id, ".sock");
  record.backend["fake"] = true;
  return absl::OkStatus();
}

absl::Status FakeBackend::Stop(SandboxRecord& record, absl::Duration) {
  std::lock_guard<std::mutex> l(mu_);
  if (absl::Status st = Take("stop"); !st.ok()) return st;
  running_.erase(record.id);
  record.exit_status = 0;
  return absl::OkStatus();
}

absl::Status FakeBackend::Cleanup(SandboxRecord& record) {
  std::lock_guard<std::mutex> l(mu_);
  if (absl::Status st = Take("cleanup"); !st.ok()) return st;
  running_.erase(record.id);
  created_.erase(record.id);
  return absl::OkStatus();
}

absl::Status FakeBackend::Recover(SandboxRecord& record) {
  std::lock_guard<std::mutex> l(mu_);
  if (absl::Status st = Take("recover"); !st.ok()) return st;
  if (!running_.contains(record.id)) {
    return absl::NotFoundError(absl::StrCat("sandbox ", record.id, " is gone"));
  }
  return absl::OkStatus();
}

absl::StatusOr<MetricSample> FakeBackend::Metrics(const SandboxRecord& record) {
  std::lock_guard<std::mutex> l(mu_);
  if (absl::Status st = Take("metrics"); !st.ok()) return st;
  return MetricSample{"kuasar.fake.Metrics", record.id};
}

void FakeBackend::FailNext(const std::string& op, absl::Status status) {
  std::lock_guard<std::mutex> l(mu_);
  fail_next_[op] = std::move(status);
}

void FakeBackend::Exit(const std::string& id, uint32_t code) {
  SandboxExitSink* sink;
  {
    std::lock_guard<std::mutex> l(mu_);
    running_.erase(id);
    sink = sink_;
  }
  if (sink) sink->OnSandboxExit(id, code, absl::Now());
}

void FakeBackend::Vanish(const std::string& id) {
  std::lock_guard<std::mutex> l(mu_);
  running_.erase(id);
}

bool FakeBackend::IsRunning(const std::string& id) const {
  std::lock_guard<std::mutex> l(mu_);
  return running_.contains(id);
}

bool FakeBackend::HasResources(const std::string& id) const {
  std::lock_guard<std::mutex> l(mu_);
  return created_.contains(id) || running_.contains(id);
}

int FakeBackend::calls(const std::string& op) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = calls_.find(op);
  return it == calls_.end() ? 0 : it->second;
}

}  // namespace kuasar
