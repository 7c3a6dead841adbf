// RestVmmHypervisor: what the drivers of VMMs with a REST API on a unix socket and a
// hybrid vsock agent channel (Cloud Hypervisor, Firecracker) share: spawning the VMM
// (in the pod's netns) and watching its exit, virtiofsd, waiting for the API, waiting for
// the agent's vsock port, Stop's escalation, Kill, the persisted state and Recover. A
// driver adds its command line, its boot requests and its power-off/quit requests.
// Threading as for Hypervisor: blocking calls on worker threads, serialized per VM by the
// caller; the exit watch runs on the io_context.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/sandboxers/vmm/common/vmm_capabilities.h"
#include "runtime/sandboxers/vmm/common/vmm_process.h"
#include "runtime/sandboxers/vmm/hypervisor.h"
#include "runtime/sandboxers/vmm/rest/rest_client.h"

namespace boost::asio {
class io_context;
}

namespace kuasar::vmm {

// Where one VM's files go. Sockets in the short socket dir, logs in the state dir.
struct RestVmmPaths {
  std::string api_socket;       // <socket_dir>/api.sock
  std::string vsock_socket;     // <socket_dir>/vsock.sock: hybrid vsock
  std::string virtiofs_socket;  // <socket_dir>/virtiofs.sock
  std::string console_log;      // <state_dir>/console.log: the guest's serial console
  std::string vmm_log;          // <state_dir>/<driver>.log: the VMM's stdout and stderr
  std::string virtiofsd_log;    // <state_dir>/virtiofsd.log
  static RestVmmPaths For(const VmConfig& vm, std::string_view driver);
};

struct RestVmmOptions {
  std::string driver;       // "cloud-hypervisor", "firecracker": names logs and state
  std::string ping_target;  // a GET that answers once the API is up
  uint32_t vsock_port = 1024;
  absl::Duration api_timeout = absl::Seconds(10);
  absl::Duration launch_timeout = absl::Seconds(30);
  // virtiofsd for VmConfig::shared_dir; empty path: shared dirs are refused.
  std::string virtiofsd_path;
  std::string virtiofs_cache = "auto";
  std::vector<std::string> virtiofsd_extra_args;
  VmmCapabilities capabilities;  // what the VMM process keeps of root's
};

class RestVmmHypervisor : public Hypervisor {
 public:
  RestVmmHypervisor(RestVmmOptions options, boost::asio::io_context& io);
  ~RestVmmHypervisor() override;

  absl::Status Prepare(const VmConfig& config) override;
  absl::Status Launch() override;
  absl::StatusOr<AgentChannel> WaitReady(absl::Time deadline) override;
  AgentChannel agent_channel() const override;
  absl::Status Stop(absl::Duration timeout) override;
  absl::Status Kill() override;
  absl::Status Recover(const nlohmann::json& state) override;
  nlohmann::json PersistedState() const override;
  std::optional<ProcessIdentity> Identity() const override;
  void SetExitCallback(ExitCallback callback) override;
  void Describe(std::map<std::string, std::string>* info) const override;

  const std::vector<std::string>& command_line() const { return argv_; }
  const RestVmmPaths& paths() const { return paths_; }

 protected:
  // Prepare: the driver's checks of `vm` and its argv (paths() is set).
  virtual absl::StatusOr<std::vector<std::string>> BuildArgv(const VmConfig& vm) = 0;
  // Launch, once the API answers: configure the VM and boot it.
  virtual absl::Status ConfigureAndBoot() = 0;
  // Stop, first step: ask the guest to power off (ACPI button, Ctrl+Alt+Del).
  virtual absl::Status RequestPowerOff() = 0;
  // Stop, second step when the guest did not: make the VMM quit by itself.
  virtual void RequestQuit() = 0;
  // Recover, after the API answered: check the VM is what we left (e.g. running).
  virtual absl::Status CheckRecovered() { return absl::OkStatus(); }

  const RestClient& rest() const { return *rest_; }
  const VmConfig& vm() const { return vm_; }
  const RestVmmOptions& options() const { return options_; }
  // The VMM process, or null before Launch/Recover; valid while this object lives.
  VmmProcess* vmm_process() const;

 private:
  struct Shared;

  void WatchExit();
  absl::Status KeepTrying() const;  // FAILED_PRECONDITION once the VMM has exited
  absl::Status FinishAfterExit(absl::Duration wait);
  std::string DiagnosticTail() const;

  const RestVmmOptions options_;
  boost::asio::io_context& io_;
  std::shared_ptr<Shared> shared_;
  VmConfig vm_;
  RestVmmPaths paths_;
  std::vector<std::string> argv_;
  std::unique_ptr<RestClient> rest_;
  mutable std::mutex mu_;  // guards the two handles
  std::unique_ptr<VmmProcess> vmm_;
  std::unique_ptr<VmmProcess> virtiofsd_;
};

// "exited with status N" / "killed by signal N" / "the VMM exited" (not our child).
std::string DescribeWaitStatus(int wait_status);

}  // namespace kuasar::vmm
