#include "runtime/sandboxers/wasm/cpu_throttle.h"

#include <time.h>

#include <algorithm>

namespace kuasar {
namespace {

class RealClockImpl final : public CpuThrottle::Clock {
 public:
  absl::Duration ThreadCpu() override {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return absl::DurationFromTimespec(ts);
  }
  absl::Time Now() override { return absl::Now(); }
  void SleepFor(absl::Duration d) override { absl::SleepFor(d); }
};

}  // namespace

CpuThrottle::Clock* CpuThrottle::RealClock() {
  static RealClockImpl clock;
  return &clock;
}

CpuThrottle::CpuThrottle(const WasmLimits& limits, Clock* clock) : clock_(clock) {
  if (limits.cpu_quota_us > 0 && limits.cpu_period_us > 0 &&
      limits.cpu_quota_us < limits.cpu_period_us * 1024) {
    quota_ = absl::Microseconds(limits.cpu_quota_us);
    period_ = absl::Microseconds(limits.cpu_period_us);
  }
  if (limits.cpu_time_limit_ms > 0) budget_ = absl::Milliseconds(limits.cpu_time_limit_ms);
}

absl::Duration CpuThrottle::tick() const {
  if (quota_ <= absl::ZeroDuration()) return absl::Milliseconds(10);
  return std::clamp(std::min(quota_, period_) / 4, absl::Milliseconds(1), absl::Milliseconds(10));
}

void CpuThrottle::Start() {
  start_cpu_ = clock_->ThreadCpu();
  period_cpu_ = absl::ZeroDuration();
  used_ = absl::ZeroDuration();
  period_start_ = clock_->Now();
}

absl::Duration CpuThrottle::used() const { return used_; }

bool CpuThrottle::OnTick() {
  used_ = clock_->ThreadCpu() - start_cpu_;
  if (budget_ > absl::ZeroDuration() && used_ >= budget_) return false;
  if (quota_ <= absl::ZeroDuration()) return true;
  absl::Time now = clock_->Now();
  if (now >= period_start_ + period_) {  // a new period: its quota starts afresh
    period_start_ = now;
    period_cpu_ = used_;
    return true;
  }
  if (used_ - period_cpu_ < quota_) return true;
  // Over the quota: sleep out the period. What ran past the quota (up to a tick) is
  // charged to the next period, as CFS does, so the long-run share is the quota's.
  absl::Duration overrun = used_ - period_cpu_ - quota_;
  absl::Duration rest = period_start_ + period_ - now;
  clock_->SleepFor(rest);
  throttled_ += rest;
  period_start_ = clock_->Now();
  period_cpu_ = clock_->ThreadCpu() - start_cpu_ - std::min(overrun, quota_);
  return true;
}

}  // namespace kuasar
