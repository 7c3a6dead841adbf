// Guest: the simulated VM behind every personality. Powering on maps and touches the
// modelled memory, waits the modelled boot latency (paused VMs do not advance), then
// starts the real guest agent with its channel on the socket kind the VMM offers: a unix
// socket per vsock port in the VM's run dir (the hybrid vsock device relays CONNECTs to
// it) or one end of a virtio-serial socketpair. The agent's exit is the guest's poweroff
// (clean: exit 0 or SIGTERM) or crash; the owner learns of it through OnExit. Applies the
// guest-side faults (hang boot, kill agent, drop channel). One io_context thread.
#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "sim/common/agent_process.h"
#include "sim/common/boot_model.h"
#include "sim/common/fault_plan.h"
#include "sim/common/guest_control.h"
#include "sim/common/guest_memory.h"
#include "sim/common/hybrid_vsock.h"
#include "sim/common/serial_channel.h"
#include "sim/common/sim_config.h"

namespace kuasar::sim {

struct GuestExit {
  int wait_status = 0;  // the agent's
  bool clean = false;   // exit 0 or SIGTERM: the guest powered off; else it crashed
};

class Guest : public GuestControl {
 public:
  Guest(boost::asio::io_context& io, const SimConfig& config, FaultPlan& faults,
        BootSampler& sampler);
  ~Guest() override;

  // The agent channel. Vsock: the agent listens on <run dir>/vsock-<port>.sock, the run
  // dir being <config.run_dir or dir_hint>/fakevm-<pid>. Serial: the channel's socketpair
  // (the run dir, for the agent's state, beside the chardev socket).
  void UseVsock(const std::string& dir_hint);
  void SetVsockDevice(HybridVsock* vsock) { vsock_ = vsock; }
  void UseSerial(SerialChannel* serial);
  // Where the hybrid vsock device finds guest port `port`.
  std::string VsockPortPath(uint32_t port) const;

  void OnExit(std::function<void(const GuestExit&)> fn) { on_exit_ = std::move(fn); }
  void OnAgentStarted(std::function<void(double boot_ms)> fn) { on_started_ = std::move(fn); }

  // Faults: re-arm the agent's fault timers after the plan changed; act now.
  void OnFaultsChanged();
  void KillAgent();
  void DropChannel();

  absl::Status PowerOn(const GuestSpec& spec) override;
  void PowerButton() override;
  void PowerOff() override;
  absl::Status Reset() override;
  void SetPaused(bool paused) override;
  bool powered() const override { return powered_; }
  bool paused() const override { return paused_; }
  bool agent_running() const override { return agent_ && agent_->running(); }
  std::optional<pid_t> agent_pid() const;
  size_t memory_bytes() const { return memory_.bytes(); }

 private:
  void ArmBoot(std::chrono::steady_clock::duration after);
  void StartAgent();
  std::string AgentStateDir();
  void SetRunDir(const std::string& dir_hint);
  void WatchAgent();
  void AgentExited(int wait_status);
  void ArmAgentFaults();
  void StopAgent();

  boost::asio::io_context& io_;
  const SimConfig& config_;
  FaultPlan& faults_;
  BootSampler& sampler_;
  GuestMemory memory_;
  GuestSpec spec_;
  std::string run_dir_;
  std::string state_dir_;  // the agent's --state-dir, removed with the guest
  HybridVsock* vsock_ = nullptr;
  SerialChannel* serial_ = nullptr;
  bool use_vsock_ = false;
  std::optional<AgentProcess> agent_;
  std::unique_ptr<boost::asio::posix::stream_descriptor> agent_wait_;
  boost::asio::steady_timer boot_timer_, kill_timer_, drop_timer_;
  std::chrono::steady_clock::time_point boot_started_, boot_deadline_, agent_started_;
  std::chrono::steady_clock::duration boot_remaining_{};
  bool powered_ = false, paused_ = false, booting_ = false;
  uint64_t generation_ = 0;  // bumped on every power transition; stale callbacks check it
  std::function<void(const GuestExit&)> on_exit_;
  std::function<void(double)> on_started_;
};

}  // namespace kuasar::sim
