// SvHypervisor: the Hypervisor driver for StratoVirt. StratoVirt runs as our child (in the
// pod's network namespace when one is given), controlled over QMP (common/qmp_client.h:
// StratoVirt's subset, docs/qmp.md); the agent channel is the virtio-serial port
// agent.channel.0 on <socket_dir>/agent.sock (one host connection at a time: the
// sandboxer's TaskBridge multiplexes it). StratoVirt reports no port-open event, so
// WaitReady returns once the VM runs and the channel socket exists; the agent is then
// reached with the bridge's retries. No shared dir and no hotplug yet. Threading as for
// Hypervisor: blocking calls on worker threads; QMP events and the exit watch on the
// io_context.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/sandboxers/vmm/common/qmp_client.h"
#include "runtime/sandboxers/vmm/common/vmm_process.h"
#include "runtime/sandboxers/vmm/hypervisor.h"
#include "runtime/sandboxers/vmm/stratovirt/sv_command_line.h"
#include "runtime/sandboxers/vmm/stratovirt/sv_config.h"

namespace kuasar::vmm {

class SvHypervisor : public Hypervisor {
 public:
  SvHypervisor(const SvConfig& config, boost::asio::io_context& io);
  ~SvHypervisor() override;

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

  // QMP query-status: "running", "paused", ...
  absl::StatusOr<std::string> RunState();
  const std::vector<std::string>& command_line() const { return argv_; }

 private:
  struct Shared;

  absl::Status ConnectQmp(absl::Time deadline);
  void WatchExit();
  absl::Status FinishAfterExit(absl::Duration wait);
  absl::StatusOr<nlohmann::json> Qmp(std::string_view command,
                                     absl::Duration timeout = absl::Seconds(10));
  VmmProcess* process() const;

  const SvConfig config_;
  boost::asio::io_context& io_;
  std::shared_ptr<Shared> shared_;
  VmConfig vm_;
  SvPaths paths_;
  std::vector<std::string> argv_;
  mutable std::mutex mu_;  // guards the two handles
  std::unique_ptr<VmmProcess> vmm_;
  std::shared_ptr<QmpClient> qmp_;
};

}  // namespace kuasar::vmm
