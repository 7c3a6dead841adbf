// Runs a Scenario through CRI, as a kubelet would: RunPodSandbox, CreateContainer,
// StartContainer, then waits for the container's first log line; times each phase per pod
// and samples PSS of the management processes (sandboxer or shims), the per-pod processes
// and the node as pods accumulate. Blocking; starts its own threads for parallel modes.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "harness/pss.h"
#include "harness/scenario.h"

namespace kuasar::harness {

struct CriTarget {
  std::string label;     // "kuasar-runc", "runc-shim", ...
  std::string endpoint;  // unix:///... CRI socket of containerd
  std::string handler;   // runtime handler (RuntimeClass)
  std::string work_dir;  // pod/container configs' log directories go below
  ProcessMatcher management;  // the sandboxer, or the baseline's shims
  ProcessMatcher per_pod;     // holders / VMMs / pause containers
};

struct PodResult {
  int index = 0;
  std::string pod_id;
  double run_pod_ms = 0, create_ms = 0, start_ms = 0, first_output_ms = 0;
  // RunPodSandbox sent -> every container started (the Kuasar report's startup time).
  double startup_ms = 0;
  double first_output_total_ms = 0;  // RunPodSandbox sent -> first log line seen
  double began_ms = 0;               // offset from the run's start
  std::string error;
  nlohmann::json ToJson() const;
};

struct PssPoint {
  int pods = 0;
  SetSample management, per_pod, node;
  nlohmann::json ToJson() const;
};

struct RunResult {
  Scenario scenario;
  std::string target;
  std::vector<PodResult> pods;
  std::vector<PssPoint> pss;
  double wall_ms = 0;  // first RunPodSandbox -> last container started
  int failures = 0;
};

using Progress = std::function<void(int done, int total)>;

absl::StatusOr<RunResult> RunCriScenario(const Scenario& scenario, const CriTarget& target,
                                         const Progress& progress = nullptr);

}  // namespace kuasar::harness
