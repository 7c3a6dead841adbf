// The performance model of one VMM: how long it takes to start and to boot a guest to its
// init, and how much memory it maps and touches. Numbers come from a model TOML
// (fixtures/sim/<personality>.toml, each figure with its source beside it), never from
// code. Sampling is deterministic for a given seed. Not thread-safe (one per VMM).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "runtime/core/toml_section.h"

namespace kuasar::sim {

// A latency distribution in milliseconds, one of:
//   distribution = "fixed"       ms = 100
//   distribution = "lognormal"   median_ms = 100, p90_ms = 125
//   distribution = "percentiles" percentiles = [0, 50, 90, 100], percentile_ms = [..]
//     (the inverse CDF, linear between points; 0 and 100 bound it)
// with optional min_ms / max_ms clamps.
class LatencyDistribution {
 public:
  static LatencyDistribution Fixed(double ms);
  static absl::Status FromToml(TomlSection& section, LatencyDistribution* out);

  double SampleMs(std::mt19937_64& rng) const;
  double MedianMs() const;

 private:
  enum class Kind { kFixed, kLogNormal, kPercentiles };
  Kind kind_ = Kind::kFixed;
  double fixed_ms_ = 0;
  double mu_ = 0, sigma_ = 0;   // lognormal of ln(ms)
  std::vector<double> p_, ms_;  // percentiles, ascending
  double min_ms_ = 0, max_ms_ = 3600e3;
};

struct MemoryModel {
  double overhead_mib = 0;       // the VMM's own threads and device state
  double guest_touched_mib = 0;  // guest pages dirtied by boot to init (capped by guest RAM)
  double per_vcpu_mib = 0;       // per vCPU (stacks, KVM run structures)
  // MiB to map and touch for a guest of `guest_mib` RAM and `vcpus` vCPUs.
  double TouchMib(double guest_mib, int vcpus) const;
};

struct BootModel {
  LatencyDistribution startup = LatencyDistribution::Fixed(0);  // exec -> API socket up
  LatencyDistribution boot = LatencyDistribution::Fixed(0);     // boot request -> guest init
  MemoryModel memory;
  double scale = 1.0;  // multiplies every latency (CI runs boots faster)
  uint64_t seed = 0;   // mixed with the instance's name (so 100 VMs differ, reproducibly)
  bool seeded = false;

  // Reads [startup], [boot] and [memory] of a model file.
  static absl::Status FromToml(TomlSection& root, BootModel* out);
};

// One VMM's sampler: its own generator seeded from the model's seed and the instance
// (socket path or VM name), or from the clock when no seed was given.
class BootSampler {
 public:
  BootSampler(const BootModel& model, const std::string& instance);
  double StartupMs();
  double BootMs();

 private:
  const BootModel& model_;
  std::mt19937_64 rng_;
};

}  // namespace kuasar::sim
