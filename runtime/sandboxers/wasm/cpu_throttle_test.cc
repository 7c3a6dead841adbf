#include "runtime/sandboxers/wasm/cpu_throttle.h"

#include <gtest/gtest.h>

namespace kuasar {
namespace {

// A thread that burns CPU at full speed: CPU time advances with wall time except while
// the throttle sleeps.
class FakeClock : public CpuThrottle::Clock {
 public:
  absl::Duration ThreadCpu() override { return cpu_; }
  absl::Time Now() override { return now_; }
  void SleepFor(absl::Duration d) override {
    now_ += d;
    slept_ += d;
  }
  void Burn(absl::Duration d) {
    cpu_ += d;
    now_ += d;
  }
  absl::Duration cpu_;
  absl::Time now_ = absl::UnixEpoch() + absl::Hours(1);
  absl::Duration slept_;
};

TEST(CpuThrottle, NoLimitsMeansNoTicks) {
  FakeClock clock;
  CpuThrottle t(WasmLimits{}, &clock);
  EXPECT_FALSE(t.active());
}

TEST(CpuThrottle, QuotaHoldsTheThreadToItsShare) {
  FakeClock clock;
  WasmLimits lim;
  lim.cpu_quota_us = 20000;  // 20 ms per 100 ms
  lim.cpu_period_us = 100000;
  CpuThrottle t(lim, &clock);
  ASSERT_TRUE(t.active());
  EXPECT_EQ(t.tick(), absl::Milliseconds(5));
  t.Start();
  absl::Time start = clock.now_;
  while (clock.now_ - start < absl::Seconds(10)) {
    clock.Burn(t.tick());
    ASSERT_TRUE(t.OnTick());
  }
  double share = absl::FDivDuration(clock.cpu_, clock.now_ - start);
  EXPECT_NEAR(share, 0.2, 0.01);
  EXPECT_EQ(t.throttled(), clock.slept_);
}

TEST(CpuThrottle, TickStaysBetweenOneAndTenMilliseconds) {
  FakeClock clock;
  WasmLimits lim;
  lim.cpu_quota_us = 2000;
  lim.cpu_period_us = 100000;
  EXPECT_EQ(CpuThrottle(lim, &clock).tick(), absl::Milliseconds(1));
  lim.cpu_quota_us = 400000;  // four CPUs' worth: never throttles one thread
  EXPECT_EQ(CpuThrottle(lim, &clock).tick(), absl::Milliseconds(10));
  lim = {};
  lim.cpu_time_limit_ms = 1000;
  EXPECT_EQ(CpuThrottle(lim, &clock).tick(), absl::Milliseconds(10));
}

TEST(CpuThrottle, BudgetEndsTheRun) {
  FakeClock clock;
  WasmLimits lim;
  lim.cpu_time_limit_ms = 100;
  CpuThrottle t(lim, &clock);
  clock.Burn(absl::Seconds(5));  // before Start: not counted
  t.Start();
  int ticks = 0;
  while (t.OnTick()) {
    clock.Burn(t.tick());
    ++ticks;
  }
  EXPECT_EQ(ticks, 10);
  EXPECT_EQ(t.used(), absl::Milliseconds(100));
}

}  // namespace
}  // namespace kuasar
