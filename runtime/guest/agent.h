// Agent: vmm-task assembled. One io_context (one thread) carries the ttrpc connections,
// the Reaper's SIGCHLD, the stop signals, ProcessIo and the stdio pumps; a worker pool
// runs the blocking ttrpc handlers (Task API calls that drive the OCI runtime) and the
// stdio streams. Task API: OciTaskService behind GuestTaskService; Sandbox API:
// SandboxService + StreamRegistry. Run() blocks until SIGTERM/SIGINT/SIGPWR, the power
// button or Sandbox.Shutdown, then stops every container and closes every channel;
// powering a VM off is left to main(). Start/Run/RequestExit are thread-safe.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/guest/agent_channels.h"
#include "runtime/guest/agent_options.h"
#include "runtime/guest/guest_task_service.h"
#include "runtime/guest/linux_guest_system.h"
#include "runtime/guest/local_spawner.h"
#include "runtime/guest/reaper.h"
#include "runtime/guest/sandbox_service.h"
#include "runtime/guest/signal_watcher.h"
#include "runtime/guest/stream_registry.h"
#include "runtime/oci/oci_task_service.h"
#include "runtime/ttrpc/server.h"

namespace kuasar::guest {

class Agent {
 public:
  // The caller has run BlockAgentSignals() and InitGuest() already.
  static absl::StatusOr<std::unique_ptr<Agent>> Start(const AgentOptions& options);
  ~Agent();

  // Blocks until an exit is requested, then tears down in order.
  void Run();
  void RequestExit();
  // Kills and deletes every container; idempotent.
  void StopContainers();

 private:
  explicit Agent(AgentOptions options);
  absl::Status Init();
  absl::Status OpenChannels();
  void Teardown();

  const AgentOptions options_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread io_thread_;
  std::unique_ptr<boost::asio::thread_pool> workers_;

  ExitRegistry exits_;
  std::unique_ptr<Reaper> reaper_;
  std::unique_ptr<SignalWatcher> stop_signals_;
  LocalSpawner spawner_{&exits_};
  std::unique_ptr<ContainerEngine> engine_;
  std::unique_ptr<OomWatcher> oom_;
  std::unique_ptr<EventPublisher> events_;
  std::shared_ptr<OciTaskService> containers_;
  std::unique_ptr<StreamRegistry> streams_;
  std::shared_ptr<GuestTaskService> tasks_;
  std::unique_ptr<LinuxGuestSystem> system_;
  std::unique_ptr<SandboxService> sandbox_;
  std::unique_ptr<ttrpc::Server> server_;
  std::vector<std::unique_ptr<VsockListener>> vsock_;
  std::vector<std::unique_ptr<SerialPortServer>> serial_;
  std::vector<std::unique_ptr<HostSessionRelay>> serve_fds_;
  std::unique_ptr<PowerButton> power_button_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool exit_requested_ = false;
  bool torn_down_ = false;
  std::mutex stop_mu_;
  bool containers_stopped_ = false;
};

}  // namespace kuasar::guest
