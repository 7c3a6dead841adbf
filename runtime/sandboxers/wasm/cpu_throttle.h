// CpuThrottle: a module's CPU limits, enforced at Wasmtime's epoch ticks (the engine
// interrupts running wasm every tick and calls OnTick on the module's own thread).
// Bandwidth (OCI linux.resources.cpu quota/period) works like CFS bandwidth control in user
// space: once the thread used its quota within the current period it sleeps to the end of
// that period. A total CPU time budget (OCI process.rlimits RLIMIT_CPU) ends the run when
// used up, as a clean trap rather than the kernel's SIGXCPU. One per run; not thread-safe.
#pragma once

#include "absl/time/time.h"
#include "runtime/sandboxers/wasm/wasm_engine.h"

namespace kuasar {

class CpuThrottle {
 public:
  class Clock {
   public:
    virtual ~Clock() = default;
    virtual absl::Duration ThreadCpu() = 0;  // CPU time of the calling thread
    virtual absl::Time Now() = 0;
    virtual void SleepFor(absl::Duration d) = 0;
  };
  static Clock* RealClock();

  explicit CpuThrottle(const WasmLimits& limits, Clock* clock = RealClock());

  // Whether any CPU limit applies (else no ticks are needed).
  bool active() const { return quota_ > absl::ZeroDuration() || budget_ > absl::ZeroDuration(); }
  // How often OnTick should run: a quarter of the quota (the most a period can overshoot),
  // between 1 and 10 ms.
  absl::Duration tick() const;
  // Marks the start of the run (CPU time is counted from here).
  void Start();
  // Sleeps while over the quota; false once the CPU time budget is used up.
  bool OnTick();
  absl::Duration used() const;  // CPU time since Start, as of the last tick
  absl::Duration throttled() const { return throttled_; }

 private:
  Clock* clock_;
  absl::Duration quota_, period_, budget_;
  absl::Duration start_cpu_, period_cpu_, used_, throttled_;
  absl::Time period_start_;
};

}  // namespace kuasar
