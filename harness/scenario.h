// Scenario: one benchmark run as a TOML file (fixtures/scenarios/*.toml): how many pods,
// started how (serial, all in parallel, or in groups), with which containers, through
// which API. Errors name the file and the key.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kuasar::harness {

enum class StartMode { kSerial, kParallel, kGroups };

struct Scenario {
  std::string name;
  int pods = 100;
  StartMode mode = StartMode::kSerial;
  int group_size = 50;           // kGroups: this many at once, group after group
  int containers_per_pod = 1;
  std::string image = "docker.io/library/busybox:kuasar";
  // The container prints `ready_line` first, then sleeps: "first output" is when it shows.
  std::vector<std::string> command = {"sh", "-c", "echo ready; exec sleep 3600"};
  std::string ready_line = "ready";
  // Pod counts after which PSS is sampled.
  std::vector<int> pss_at = {1, 5, 10, 20, 30, 50, 100};
  int warmup_pods = 1;           // started and removed before measuring
  double timeout_s = 300;        // per pod
  bool remove_after = true;

  static absl::StatusOr<Scenario> Parse(std::string_view toml, std::string_view source);
  static absl::StatusOr<Scenario> Load(const std::string& path);
};

std::string_view StartModeName(StartMode m);

}  // namespace kuasar::harness
