#include "sim/common/fault_injector.h"

#include "runtime/base/logging.h"
#include "sim/common/guest.h"
#include "sim/common/vmm_runtime.h"

namespace kuasar::sim {

FaultInjector::FaultInjector(boost::asio::io_context& io, FaultPlan& plan, Guest* guest)
    : plan_(plan), guest_(guest), crash_timer_(io) {}

void FaultInjector::Arm() {
  crash_timer_.cancel();
  if (plan_.crash_after_ms < 0) return;
  crash_timer_.expires_after(std::chrono::milliseconds(plan_.crash_after_ms));
  crash_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) Crash();
  });
}

absl::Status FaultInjector::Apply(const nlohmann::json& doc) {
  if (absl::Status st = ApplyFaultsJson(doc, &plan_); !st.ok()) return st;
  spdlog::info("op=faults-set faults={}", FaultsToJson(plan_).dump());
  Arm();
  if (guest_ != nullptr) guest_->OnFaultsChanged();
  return absl::OkStatus();
}

void FaultInjector::Crash() {
  spdlog::warn("op=fault crash signal={}", plan_.crash_signal);
  if (crash_) {
    crash_(plan_.crash_signal);
    return;
  }
  // The agent dies with us (PR_SET_PDEATHSIG), but kill and reap it first so the crash
  // leaves no zombie for an observer to see.
  if (guest_ != nullptr) guest_->PowerOff();
  VmmRuntime::DieBySignal(plan_.crash_signal);
}

}  // namespace kuasar::sim
