// OciTaskService: containerd's Task API (task v2/v3) for the containers of ONE pod whose
// containers run under an OCI runtime: a runc pod (served by the sandboxer itself, no shim)
// and a VM pod (served by the guest agent). Protocol-free: the ttrpc adapter decodes a
// request, calls the method with the caller's containerd namespace, encodes the reply.
// Containers run through the ContainerEngine, launched by a ProcessSpawner that reaps
// them and reports exits into `exits` (the pod holder; the agent as PID 1). Thread-safe: calls on different containers run
// in parallel; calls on one container are serialized; Wait never holds a thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "containerd/task/v3/shim.pb.h"
#include "runtime/core/event_publisher.h"
#include "runtime/core/task_service.h"
#include "runtime/oci/container_engine.h"
#include "runtime/oci/exit_registry.h"
#include "runtime/oci/oom_watcher.h"
#include "runtime/oci/oci_container.h"

namespace kuasar {

namespace task = containerd::task::v3;

// Pod-level files bound into every container that lacks them (what containerd's own pause
// sandbox would provide): empty paths are skipped.
struct PodFiles {
  std::string hostname, hosts, resolv_conf, shm;
};

struct OciTaskServiceDeps {
  std::string sandbox_id;
  std::string sandbox_dir;
  std::string socket_dir;  // short dir for console sockets
  boost::asio::io_context* io = nullptr;
  ContainerEngine* engine = nullptr;
  ProcessSpawner* spawner = nullptr;  // the pod holder, or the agent itself
  ExitRegistry* exits = nullptr;
  EventPublisher* events = nullptr;
  OomWatcher* oom = nullptr;
  PodFiles pod_files;
  // Inside a VM (or the fake VMM's namespaces) the pod's namespaces are the agent's own:
  // containerd points a container's net/ipc/uts/pid entries at the sandbox pid's
  // /proc/<pid>/ns, which names host namespaces here, so entries with a path are dropped
  // and the container shares the agent's.
  bool guest_namespaces = false;
  // Saves the containers' JSON into the sandbox record (called after every change).
  std::function<void(const nlohmann::json&)> persist;
};

class OciTaskService final : public TaskService {
 public:
  explicit OciTaskService(OciTaskServiceDeps deps);
  ~OciTaskService() override;

  absl::StatusOr<task::CreateTaskResponse> Create(std::string_view ns,
                                                  const task::CreateTaskRequest& req) override;
  absl::StatusOr<task::StartResponse> Start(const task::StartRequest& req) override;
  absl::StatusOr<task::DeleteResponse> Delete(const task::DeleteRequest& req) override;
  absl::StatusOr<task::StateResponse> State(const task::StateRequest& req) override;
  absl::StatusOr<task::PidsResponse> Pids(const task::PidsRequest& req) override;
  absl::Status Pause(const task::PauseRequest& req) override;
  absl::Status Resume(const task::ResumeRequest& req) override;
  absl::Status Kill(const task::KillRequest& req) override;
  absl::Status Exec(const task::ExecProcessRequest& req) override;
  absl::Status ResizePty(const task::ResizePtyRequest& req) override;
  absl::Status CloseIO(const task::CloseIORequest& req) override;
  absl::Status Update(const task::UpdateTaskRequest& req) override;
  void Wait(const task::WaitRequest& req, WaitCallback done) override;
  absl::StatusOr<task::StatsResponse> Stats(const task::StatsRequest& req) override;
  absl::StatusOr<task::ConnectResponse> Connect(const task::ConnectRequest& req) override;
  absl::Status Shutdown(const task::ShutdownRequest& req) override;

  // Restores containers from their JSON after a restart; exits the holder journaled while
  // we were down are applied (and published), live processes are watched again.
  absl::Status Recover(const nlohmann::json& containers, const std::vector<JournaledExit>& journal);
  // Sandbox stop: SIGKILL every container's processes.
  void KillAll();
  // Sandbox shutdown: delete every container (force) and unmount; idempotent.
  void DeleteAll();
  // The holder is gone, so no exit will be reported: every process not yet stopped is
  // recorded (and published) as exited with `code`.
  void AbandonAll(uint32_t code);
  bool AllStopped() const;
  nlohmann::json ContainersJson() const;
  size_t container_count() const;

 private:
  std::shared_ptr<OciContainer> Find(const std::string& id) const;
  absl::StatusOr<std::shared_ptr<OciContainer>> Get(const std::string& id) const;
  void Persist();
  void WatchExit(const std::shared_ptr<OciContainer>& c, const std::string& exec_id, pid_t pid);
  void OnExit(const std::shared_ptr<OciContainer>& c, const std::string& exec_id, int wait_status,
              absl::Time at);
  void FinishExit(const std::shared_ptr<OciContainer>& c, const std::string& exec_id,
                  uint32_t status, absl::Time at);
  absl::Status PrepareBundle(OciContainer& c, bool* terminal);
  void Teardown(OciContainer& c);
  std::string ConsoleSocketPath(const std::string& id, const std::string& exec_id);

  OciTaskServiceDeps d_;
  mutable std::mutex mu_;  // guards containers_ and every process's state fields
  std::map<std::string, std::shared_ptr<OciContainer>> containers_;
  std::atomic<uint64_t> console_seq_{0};
};

}  // namespace kuasar
