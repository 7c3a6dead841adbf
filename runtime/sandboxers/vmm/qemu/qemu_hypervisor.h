// QemuHypervisor: the Hypervisor driver for QEMU. QEMU runs as our child (in the pod's
// network namespace when one is given), controlled over QMP; the agent channel is the
// virtio-serial port agent.channel.0 on a unix socket; the shared dir goes over
// virtio-fs (virtiofsd) or 9p. The guest console is kept in <state_dir>/console.log.
// Threading as for Hypervisor: blocking calls on worker threads, serialized per VM by
// the caller; QMP events and the exit watch run on the io_context.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/sandboxers/vmm/common/qmp_client.h"
#include "runtime/sandboxers/vmm/common/vmm_process.h"
#include "runtime/sandboxers/vmm/hypervisor.h"
#include "runtime/sandboxers/vmm/qemu/qemu_command_line.h"
#include "runtime/sandboxers/vmm/qemu/qemu_config.h"

namespace boost::asio {
class io_context;
}

namespace kuasar::vmm {

class QemuHypervisor : public Hypervisor {
 public:
  // `accel` is resolved (kKvm or kTcg); `virtiofsd_rust` as DetectVirtiofsdFlavor said.
  QemuHypervisor(const QemuConfig& config, Accel accel, bool virtiofsd_rust,
                 boost::asio::io_context& io);
  ~QemuHypervisor() override;

  absl::Status Prepare(const VmConfig& config) override;
  absl::Status Launch() override;
  absl::StatusOr<AgentChannel> WaitReady(absl::Time deadline) override;
  AgentChannel agent_channel() const override;
  absl::Status Stop(absl::Duration timeout) override;
  absl::Status Kill() override;
  absl::Status Recover(const nlohmann::json& state) override;
  nlohmann::json PersistedState() const override;
  std::optional<ProcessIdentity> Identity() const override;
  absl::Status AddDisk(const DiskDevice& disk) override;
  absl::Status RemoveDisk(std::string_view id) override;
  absl::Status AddNet(const NetDevice& net) override;
  absl::Status RemoveNet(std::string_view id) override;
  void SetExitCallback(ExitCallback callback) override;
  void Describe(std::map<std::string, std::string>* info) const override;

  // QMP query-status: "running", "paused", "shutdown", ...
  absl::StatusOr<std::string> RunState();
  // The argv Prepare built (tests, logs).
  const std::vector<std::string>& command_line() const { return argv_; }

 private:
  // What the io-thread callbacks share with the driver; outlives it if need be.
  struct Shared;

  absl::Status ConnectQmp(absl::Time deadline);
  void WatchExit();
  // Waits for the exit; then closes QMP, ends virtiofsd, removes sockets and pid file.
  absl::Status FinishAfterExit(absl::Duration wait);
  absl::StatusOr<std::string> ClaimHotplugBus(std::string_view id);
  absl::Status Unplug(std::string_view id, absl::Duration timeout);
  absl::StatusOr<nlohmann::json> Qmp(std::string_view command, const nlohmann::json& args,
                                     absl::Duration timeout = absl::Seconds(10));
  std::string DiagnosticTail() const;

  const QemuConfig config_;
  const Accel accel_;
  const bool virtiofsd_rust_;
  boost::asio::io_context& io_;
  std::shared_ptr<Shared> shared_;

  VmConfig vm_;
  QemuPaths paths_;
  std::vector<std::string> argv_;
  mutable std::mutex mu_;  // guards the three handles below and hotplugged_
  std::unique_ptr<VmmProcess> qemu_;
  std::unique_ptr<VmmProcess> virtiofsd_;
  std::shared_ptr<QmpClient> qmp_;                 // shared: Kill may drop it while a call uses it
  std::map<std::string, std::string> hotplugged_;  // device id -> bus
};

}  // namespace kuasar::vmm
