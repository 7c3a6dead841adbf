// Order statistics of a run's timings (nearest-rank percentiles, as the report quotes).
#pragma once

#include <vector>

namespace kuasar::harness {

struct Summary {
  int n = 0;
  double min = 0, p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;
};

Summary Summarize(std::vector<double> values);
// Nearest-rank percentile (p in [0,100]) of sorted values.
double Percentile(const std::vector<double>& sorted, double p);

}  // namespace kuasar::harness
