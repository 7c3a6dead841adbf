// GuestTaskService: containerd's Task API as the agent serves it: OciTaskService does all
// the work; this decorator only maps "kuasar-stream://<token>" stdio onto the
// StreamRegistry's FIFOs on the way in (Create, Exec), back on the way out (State), and
// releases the tokens when a process is deleted. Every other call passes through.
// Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "runtime/core/task_service.h"
#include "runtime/guest/stream_registry.h"

namespace kuasar::guest {

namespace task = containerd::task::v3;

class GuestTaskService final : public TaskService {
 public:
  GuestTaskService(std::shared_ptr<TaskService> inner, StreamRegistry* streams)
      : inner_(std::move(inner)), streams_(streams) {}

  absl::StatusOr<task::CreateTaskResponse> Create(std::string_view ns,
                                                  const task::CreateTaskRequest& req) override;
  absl::StatusOr<task::StartResponse> Start(const task::StartRequest& req) override;
  absl::StatusOr<task::DeleteResponse> Delete(const task::DeleteRequest& req) override;
  absl::StatusOr<task::StateResponse> State(const task::StateRequest& req) override;
  absl::Status Exec(const task::ExecProcessRequest& req) override;

  absl::StatusOr<task::PidsResponse> Pids(const task::PidsRequest& r) override {
    return inner_->Pids(r);
  }
  absl::Status Pause(const task::PauseRequest& r) override { return inner_->Pause(r); }
  absl::Status Resume(const task::ResumeRequest& r) override { return inner_->Resume(r); }
  absl::Status Kill(const task::KillRequest& r) override { return inner_->Kill(r); }
  absl::Status ResizePty(const task::ResizePtyRequest& r) override { return inner_->ResizePty(r); }
  absl::Status CloseIO(const task::CloseIORequest& r) override { return inner_->CloseIO(r); }
  absl::Status Update(const task::UpdateTaskRequest& r) override { return inner_->Update(r); }
  void Wait(const task::WaitRequest& r, WaitCallback done) override {
    inner_->Wait(r, std::move(done));
  }
  absl::StatusOr<task::StatsResponse> Stats(const task::StatsRequest& r) override {
    return inner_->Stats(r);
  }
  absl::StatusOr<task::ConnectResponse> Connect(const task::ConnectRequest& r) override {
    return inner_->Connect(r);
  }
  absl::Status Shutdown(const task::ShutdownRequest& r) override { return inner_->Shutdown(r); }

  // Tokens in use, for tests.
  size_t stream_process_count() const;

 private:
  using Key = std::pair<std::string, std::string>;  // container id, exec id
  struct Streams {
    std::vector<std::string> tokens;
    std::string stdin_uri, stdout_uri, stderr_uri;  // as the caller gave them
  };
  struct Mapped {
    std::string stdin_path, stdout_path, stderr_path;
    Streams streams;
  };
  // Registers the stream tokens among the three stdio strings; on error none stays.
  absl::StatusOr<Mapped> Map(const Key& key, const std::string& in, const std::string& out,
                             const std::string& err);
  void Release(const std::vector<std::string>& tokens);
  void Started(const Key& key);

  std::shared_ptr<TaskService> inner_;
  StreamRegistry* streams_;
  mutable std::mutex mu_;
  std::map<Key, Streams> procs_;
};

}  // namespace kuasar::guest
