// FaultInjector: the live fault plan of one simulated VMM. API front ends ask it whether
// to refuse or delay each call; it arms the VMM crash timer; the simulator's fault API
// (REST PUT /kuasar/faults, QMP kuasar-faults) changes the plan at run time. The guest
// side faults (hang boot, kill agent, drop channel) are read by Guest from the same plan.
// One io_context thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "sim/common/fault_plan.h"

namespace kuasar::sim {

class Guest;

class FaultInjector {
 public:
  // `crash` kills the guest and the process (default: Guest::PowerOff + DieBySignal).
  FaultInjector(boost::asio::io_context& io, FaultPlan& plan, Guest* guest);
  void SetCrashHandler(std::function<void(int sig)> crash) { crash_ = std::move(crash); }

  // Arms the crash timer from the current plan (start-up, after each change).
  void Arm();
  // Applies a fault document (see ApplyFaultsJson) and re-arms everything.
  absl::Status Apply(const nlohmann::json& doc);
  nlohmann::json Describe() const { return FaultsToJson(plan_); }

  const FaultRule* TakeRefusal(std::string_view method, std::string_view path) {
    return plan_.TakeRefusal(method, path);
  }
  int64_t TakeDelayMs(std::string_view method, std::string_view path) {
    return plan_.TakeDelayMs(method, path);
  }

 private:
  void Crash();

  FaultPlan& plan_;
  Guest* guest_;
  boost::asio::steady_timer crash_timer_;
  std::function<void(int)> crash_;
};

}  // namespace kuasar::sim
