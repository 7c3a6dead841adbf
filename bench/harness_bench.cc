// PSS sampling as the harness does it at each checkpoint: one process's smaps_rollup, and
// a whole-system scan for a process set (every /proc/PID/cmdline read, matched by name).
#include <unistd.h>

#include <benchmark/benchmark.h>

#include "harness/pss.h"

namespace {

void BM_ReadPssOneProcess(benchmark::State& state) {
  pid_t self = getpid();
  for (auto _ : state) {
    auto pss = kuasar::harness::ReadPssKiB(self);
    benchmark::DoNotOptimize(pss);
  }
}
BENCHMARK(BM_ReadPssOneProcess);

void BM_SamplePssProcessSet(benchmark::State& state) {
  kuasar::harness::ProcessMatcher matcher{{"harness_bench"}, ""};
  for (auto _ : state) {
    auto sample = kuasar::harness::SamplePss(matcher);
    benchmark::DoNotOptimize(sample);
  }
}
BENCHMARK(BM_SamplePssProcessSet)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
