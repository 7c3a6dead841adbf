// Benchmark output: JSON lines per run (one header line, one line per pod, one per PSS
// sample), a Markdown summary comparing targets, and CDF plots of startup time as SVG
// (and PNG when rsvg-convert is installed).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "harness/cri_runner.h"
#include "harness/stats.h"

namespace kuasar::harness {

absl::Status WriteJsonLines(const RunResult& run, const std::string& path);
absl::StatusOr<RunResult> ReadJsonLines(const std::string& path);

// Per-pod PSS growth of the management set: least-squares slope over the samples, KiB/pod.
double ManagementKiBPerPod(const RunResult& run);

// One table per scenario: each target's startup P50/P90/P99/mean, first output, wall time,
// management PSS at the largest sample and per pod; the ratio of every target to `baseline`.
std::string MarkdownSummary(const std::vector<RunResult>& runs);

// The startup-time CDF of each run of one scenario.
std::string CdfSvg(const std::vector<const RunResult*>& runs, const std::string& title);
absl::Status WritePlots(const std::vector<RunResult>& runs, const std::string& out_dir);

}  // namespace kuasar::harness
