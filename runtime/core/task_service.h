// TaskService: containerd's Task API (task v2/v3) for the containers of one sandbox, as a
// plain C++ interface. The sandboxer serves it itself for runc and wasm pods (one
// implementation per kind); the ttrpc adapter (runtime/server/task_ttrpc_server.h) decodes
// requests and calls it. `ns` is the caller's containerd namespace (ttrpc metadata).
// Implementations are thread-safe; Wait answers through its callback, never blocking.
#pragma once

#include <functional>
#include <string_view>

#include "absl/status/statusor.h"
#include "containerd/task/v3/shim.pb.h"

namespace kuasar {

class TaskService {
 public:
  using WaitCallback = std::function<void(absl::StatusOr<containerd::task::v3::WaitResponse>)>;
  virtual ~TaskService() = default;

  virtual absl::StatusOr<containerd::task::v3::CreateTaskResponse> Create(
      std::string_view ns, const containerd::task::v3::CreateTaskRequest& req) = 0;
  virtual absl::StatusOr<containerd::task::v3::StartResponse> Start(
      const containerd::task::v3::StartRequest& req) = 0;
  virtual absl::StatusOr<containerd::task::v3::DeleteResponse> Delete(
      const containerd::task::v3::DeleteRequest& req) = 0;
  virtual absl::StatusOr<containerd::task::v3::StateResponse> State(
      const containerd::task::v3::StateRequest& req) = 0;
  virtual absl::StatusOr<containerd::task::v3::PidsResponse> Pids(
      const containerd::task::v3::PidsRequest& req) = 0;
  virtual absl::Status Pause(const containerd::task::v3::PauseRequest& req) = 0;
  virtual absl::Status Resume(const containerd::task::v3::ResumeRequest& req) = 0;
  virtual absl::Status Kill(const containerd::task::v3::KillRequest& req) = 0;
  virtual absl::Status Exec(const containerd::task::v3::ExecProcessRequest& req) = 0;
  virtual absl::Status ResizePty(const containerd::task::v3::ResizePtyRequest& req) = 0;
  virtual absl::Status CloseIO(const containerd::task::v3::CloseIORequest& req) = 0;
  virtual absl::Status Update(const containerd::task::v3::UpdateTaskRequest& req) = 0;
  virtual void Wait(const containerd::task::v3::WaitRequest& req, WaitCallback done) = 0;
  virtual absl::StatusOr<containerd::task::v3::StatsResponse> Stats(
      const containerd::task::v3::StatsRequest& req) = 0;
  virtual absl::StatusOr<containerd::task::v3::ConnectResponse> Connect(
      const containerd::task::v3::ConnectRequest& req) = 0;
  virtual absl::Status Shutdown(const containerd::task::v3::ShutdownRequest& req) = 0;
  virtual absl::Status Checkpoint(const containerd::task::v3::CheckpointTaskRequest&) {
    return absl::UnimplementedError("checkpoint is not supported");
  }
};

}  // namespace kuasar
