#include "sim/common/boot_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"

namespace kuasar::sim {
namespace {

// z of the standard normal's 90th percentile.
constexpr double kZ90 = 1.2815515655446004;

// FNV-1a: a stable hash, so a seed gives the same samples on every build.
uint64_t StableHash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

LatencyDistribution LatencyDistribution::Fixed(double ms) {
  LatencyDistribution d;
  d.kind_ = Kind::kFixed;
  d.fixed_ms_ = ms;
  return d;
}

absl::Status LatencyDistribution::FromToml(TomlSection& s, LatencyDistribution* out) {
  if (!s.present()) return absl::OkStatus();
  LatencyDistribution d;
  std::string kind = "fixed";
  RETURN_IF_ERROR(s.Get("distribution", &kind));
  RETURN_IF_ERROR(s.Get("min_ms", &d.min_ms_, 0, 3600e3));
  RETURN_IF_ERROR(s.Get("max_ms", &d.max_ms_, 0, 3600e3));
  if (kind == "fixed") {
    d.kind_ = Kind::kFixed;
    RETURN_IF_ERROR(s.Get("ms", &d.fixed_ms_, 0, 3600e3));
  } else if (kind == "lognormal") {
    d.kind_ = Kind::kLogNormal;
    double median = 0, p90 = 0;
    RETURN_IF_ERROR(s.Get("median_ms", &median, 0.001, 3600e3));
    RETURN_IF_ERROR(s.Get("p90_ms", &p90, 0.001, 3600e3));
    if (median <= 0) return s.Error("median_ms", "required by a lognormal distribution");
    if (p90 < median) return s.Error("p90_ms", "must be at least median_ms");
    d.mu_ = std::log(median);
    d.sigma_ = (std::log(p90) - std::log(median)) / kZ90;
  } else if (kind == "percentiles") {
    d.kind_ = Kind::kPercentiles;
    std::vector<int64_t> p, ms;
    RETURN_IF_ERROR(s.Get("percentiles", &p, 0, 100));
    RETURN_IF_ERROR(s.Get("percentile_ms", &ms, 0, 3600000));
    if (p.size() < 2 || p.size() != ms.size()) {
      return s.Error("percentile_ms", "needs one value per entry of percentiles (at least 2)");
    }
    for (size_t i = 1; i < p.size(); ++i) {
      if (p[i] <= p[i - 1] || ms[i] < ms[i - 1]) {
        return s.Error("percentiles", "percentiles and their ms must both ascend");
      }
    }
    d.p_.assign(p.begin(), p.end());
    d.ms_.assign(ms.begin(), ms.end());
  } else {
    return s.Error("distribution", "expected \"fixed\", \"lognormal\" or \"percentiles\"");
  }
  RETURN_IF_ERROR(s.CheckNoUnknownKeys());
  *out = std::move(d);
  return absl::OkStatus();
}

double LatencyDistribution::SampleMs(std::mt19937_64& rng) const {
  double v = fixed_ms_;
  if (kind_ == Kind::kLogNormal) {
    std::normal_distribution<double> n(mu_, sigma_);
    v = std::exp(n(rng));
  } else if (kind_ == Kind::kPercentiles) {
    std::uniform_real_distribution<double> u(p_.front(), p_.back());
    double q = u(rng);
    size_t i = 1;
    while (i + 1 < p_.size() && p_[i] < q) ++i;
    double t = (q - p_[i - 1]) / (p_[i] - p_[i - 1]);
    v = ms_[i - 1] + t * (ms_[i] - ms_[i - 1]);
  }
  return std::clamp(v, min_ms_, max_ms_);
}

double LatencyDistribution::MedianMs() const {
  switch (kind_) {
    case Kind::kFixed:
      return fixed_ms_;
    case Kind::kLogNormal:
      return std::exp(mu_);
    case Kind::kPercentiles: {
      for (size_t i = 1; i < p_.size(); ++i) {
        if (p_[i] >= 50) {
          double t = (50 - p_[i - 1]) / (p_[i] - p_[i - 1]);
          return ms_[i - 1] + std::clamp(t, 0.0, 1.0) * (ms_[i] - ms_[i - 1]);
        }
      }
      return ms_.back();
    }
  }
  return 0;
}

double MemoryModel::TouchMib(double guest_mib, int vcpus) const {
  double guest = guest_mib > 0 ? std::min(guest_touched_mib, guest_mib) : guest_touched_mib;
  return overhead_mib + guest + per_vcpu_mib * std::max(vcpus, 1);
}

absl::Status BootModel::FromToml(TomlSection& root, BootModel* out) {
  TomlSection startup(nullptr, "", ""), boot(nullptr, "", ""), memory(nullptr, "", "");
  RETURN_IF_ERROR(root.Sub("startup", &startup));
  RETURN_IF_ERROR(root.Sub("boot", &boot));
  RETURN_IF_ERROR(root.Sub("memory", &memory));
  RETURN_IF_ERROR(LatencyDistribution::FromToml(startup, &out->startup));
  // [boot] also holds the sampling knobs; read them before the distribution's unknown-key
  // check sees them.
  int64_t seed = -1;
  RETURN_IF_ERROR(boot.Get("seed", &seed, 0, INT64_MAX));
  if (seed >= 0) {
    out->seed = static_cast<uint64_t>(seed);
    out->seeded = true;
  }
  RETURN_IF_ERROR(boot.Get("scale", &out->scale, 0, 1000));
  RETURN_IF_ERROR(LatencyDistribution::FromToml(boot, &out->boot));
  RETURN_IF_ERROR(memory.Get("overhead_mib", &out->memory.overhead_mib, 0, 1 << 20));
  RETURN_IF_ERROR(memory.Get("guest_touched_mib", &out->memory.guest_touched_mib, 0, 1 << 20));
  RETURN_IF_ERROR(memory.Get("per_vcpu_mib", &out->memory.per_vcpu_mib, 0, 1 << 16));
  return memory.CheckNoUnknownKeys();
}

BootSampler::BootSampler(const BootModel& model, const std::string& instance) : model_(model) {
  uint64_t seed =
      model.seeded
          ? model.seed ^ StableHash(instance)
          : static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  rng_.seed(seed);
}

double BootSampler::StartupMs() { return model_.startup.SampleMs(rng_) * model_.scale; }
double BootSampler::BootMs() { return model_.boot.SampleMs(rng_) * model_.scale; }

}  // namespace kuasar::sim
