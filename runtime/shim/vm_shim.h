// VmShim: the Kata process model, kept as the baseline the vmm sandboxer is measured
// against. One shim process per pod boots the pod's VM through the same Hypervisor
// drivers and guest agent the sandboxer uses and serves containerd's Task API for the
// pod by relaying it to the agent (TaskBridge); only the process model differs. It ends
// when containerd shuts it down after the pod's last container is deleted, or when the
// VM exits. Threading: Run() on the main thread; bridge and VM events on one io thread.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "absl/status/statusor.h"
#include "runtime/core/config.h"
#include "runtime/sandboxers/vmm/backend/agent_link.h"
#include "runtime/sandboxers/vmm/bridge/task_bridge.h"
#include "runtime/sandboxers/vmm/hypervisor.h"
#include "runtime/shim/bundle_info.h"
#include "runtime/shim/shim_args.h"

namespace kuasar::shim {

class VmShim : public TaskBridge::Interceptor {
 public:
  VmShim(Config config, ShimPaths paths);
  ~VmShim() override;

  // Boots the VM, waits for its agent and serves paths.SocketPath(sandbox id).
  absl::Status Boot(const BundleInfo& bundle);
  // Blocks until shutdown or VM exit; then stops the VM and removes the pod's files.
  // Returns the process exit code.
  int Run();
  // After a failed Boot: kills whatever of the VM started and removes the pod's files.
  void Abort();

  // Kills the VM recorded for `sandbox_id` (a shim that died) and removes its files.
  static absl::Status Delete(const Config& config, const ShimPaths& paths,
                             const std::string& sandbox_id);

  // TaskBridge::Interceptor: tracks containers, so Shutdown ends the shim only when the
  // pod has none left (as containerd-shim-runc-v2 does).
  absl::StatusOr<std::string> OnRequest(const std::string& service, const std::string& method,
                                        std::string payload) override;
  void OnResponse(const std::string& service, const std::string& method,
                  const std::string& request_payload, bool ok) override;

 private:
  void Wake(const char* why);

  Config config_;
  ShimPaths paths_;
  std::string id_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread io_thread_;
  std::unique_ptr<vmm::HypervisorFactory> factory_;
  std::unique_ptr<vmm::Hypervisor> vm_;
  std::shared_ptr<TaskBridge> bridge_;
  std::unique_ptr<AgentClient> agent_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> containers_;  // guarded by mu_
  bool done_ = false;                 // guarded by mu_
  std::string why_;                   // guarded by mu_
};

}  // namespace kuasar::shim
