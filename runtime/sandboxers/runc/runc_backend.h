// RuncBackend: the runc sandbox kind. A pod is a kuasar-holder process owning the pod's
// namespaces (no pause container, no shim) plus a TaskService the sandboxer serves on
// <sandbox dir>/task.sock; its containers run under crun or runc. Config: [runc].
// Thread-safe (see SandboxBackend); one io thread for holder sockets, consoles, OOM
// events and holder-exit watching, and a small pool for work those events trigger.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "runtime/core/sandbox_backend.h"
#include "runtime/oci/container_engine.h"
#include "runtime/oci/oom_watcher.h"

namespace kuasar {

struct RuncConfig {
  std::string runtime = "auto";   // auto (crun where it works, else runc) | crun | runc | a path
  std::string runtime_root;        // default <state_dir>/runtime
  std::string holder;              // default: kuasar-holder beside the executable
  bool systemd_cgroup = false;
  std::string pod_cgroup_parent = "/kuasar";  // holders' cgroup when the pod names none
  int64_t holder_timeout_ms = 10000;
};

absl::StatusOr<RuncConfig> ParseRuncConfig(const Config& config);

class RuncBackend final : public SandboxBackend {
 public:
  RuncBackend();
  ~RuncBackend() override;

  std::string_view Kind() const override { return "runc"; }
  absl::Status Init(const BackendContext& context) override;
  absl::Status Create(SandboxRecord& record) override;
  absl::Status Start(SandboxRecord& record) override;
  absl::Status Stop(SandboxRecord& record, absl::Duration timeout) override;
  absl::Status Cleanup(SandboxRecord& record) override;
  absl::Status Recover(SandboxRecord& record) override;
  absl::StatusOr<MetricSample> Metrics(const SandboxRecord& record) override;
  void DescribeStatus(const SandboxRecord& record, bool verbose,
                      std::map<std::string, std::string>* info) const override;

 private:
  struct Pod;
  absl::StatusOr<std::shared_ptr<Pod>> Attach(SandboxRecord& record, bool recovering);
  void WatchHolder(const std::shared_ptr<Pod>& pod);
  void OnHolderExit(const std::shared_ptr<Pod>& pod);
  std::shared_ptr<Pod> FindPod(const std::string& id) const;
  std::string SandboxDir(const std::string& id) const;
  std::string SocketDir(const std::string& id) const;
  // The pod's cgroup: <pod cgroup_parent or [runc] pod_cgroup_parent>/kuasar-<id>.
  std::string PodCgroupPath(const SandboxRecord& rec) const;

  BackendContext ctx_;
  RuncConfig cfg_;
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
