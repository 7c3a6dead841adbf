// HolderPodBackend: the pod model the runc and wasm sandboxers share. A pod is a
// kuasar-holder process owning the pod's namespaces (no pause container, no shim) plus an
// OciTaskService the sandboxer serves on <socket dir>/task.sock; the containers run through
// a ContainerEngine the concrete backend supplies (crun/runc, or the Wasm runner), spawned
// by the holder, which reaps them and reports their exits. Pod files, the pod cgroup,
// holder-exit watching, parked Task.Wait calls and crash recovery all live here.
// Thread-safe (see SandboxBackend); one io thread for holder sockets, consoles, OOM events
// and holder-exit watching, and a small pool for work those events trigger.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "runtime/core/sandbox_backend.h"
#include "runtime/core/toml_section.h"
#include "runtime/oci/container_engine.h"
#include "runtime/oci/oom_watcher.h"

namespace kuasar {

// The holder keys every holder-pod backend's config section has.
struct HolderPodConfig {
  std::string holder;                         // default: kuasar-holder beside the executable
  std::string pod_cgroup_parent = "/kuasar";  // holders' cgroup when the pod names none
  int64_t holder_timeout_ms = 10000;
};

// Reads `holder`, `pod_cgroup_parent` and `holder_timeout_ms` from `section`.
absl::Status ParseHolderPodKeys(TomlSection& section, HolderPodConfig* out);
// <directory of this executable>/<name> (/usr/local/bin/<name> if that cannot be read).
std::string BesideExecutable(std::string_view name);

class HolderPodBackend : public SandboxBackend {
 public:
  ~HolderPodBackend() override;

  absl::Status Init(const BackendContext& context) final;
  absl::Status Create(SandboxRecord& record) final;
  absl::Status Start(SandboxRecord& record) final;
  absl::Status Stop(SandboxRecord& record, absl::Duration timeout) final;
  absl::Status Cleanup(SandboxRecord& record) final;
  absl::Status Recover(SandboxRecord& record) final;
  absl::StatusOr<MetricSample> Metrics(const SandboxRecord& record) final;
  void DescribeStatus(const SandboxRecord& record, bool verbose,
                      std::map<std::string, std::string>* info) const final;

 protected:
  HolderPodBackend();

  struct Setup {
    HolderPodConfig pod;
    std::unique_ptr<ContainerEngine> engine;
  };
  // Reads the backend's own config section and makes its engine; called once, by Init.
  virtual absl::StatusOr<Setup> Configure(const BackendContext& context) = 0;
  // End of Start, the holder running: `spawner` starts processes as the holder's children
  // (the app kernel's per-pod sandbox). An error fails Start. Default: nothing.
  virtual absl::Status OnPodStarted(const SandboxRecord& record, ProcessSpawner& spawner) {
    (void)record, (void)spawner;
    return absl::OkStatus();
  }
  // Stop, after the containers are killed and before the holder is; and Cleanup (so it
  // must be idempotent). Default: nothing.
  virtual void OnPodStopping(const SandboxRecord& record) { (void)record; }

 private:
  struct Pod;
  absl::StatusOr<std::shared_ptr<Pod>> Attach(SandboxRecord& record, bool recovering);
  void WatchHolder(const std::shared_ptr<Pod>& pod);
  void OnHolderExit(const std::shared_ptr<Pod>& pod);
  std::shared_ptr<Pod> FindPod(const std::string& id) const;
  std::string SandboxDir(const std::string& id) const;
  std::string SocketDir(const std::string& id) const;
  // The pod's cgroup: <pod cgroup_parent or pod_cgroup_parent>/kuasar-<id>.
  std::string PodCgroupPath(const SandboxRecord& rec) const;

  BackendContext ctx_;
  HolderPodConfig cfg_;
  std::string kind_;                // for logs
  std::string fault_after_holder_;  // "<kind>.start.after_holder"
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread io_thread_;
  boost::asio::thread_pool blocking_{2};
  std::unique_ptr<ContainerEngine> engine_;
  std::unique_ptr<OomWatcher> oom_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Pod>> pods_;
};

}  // namespace kuasar
