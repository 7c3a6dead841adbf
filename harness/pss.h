// PSS (proportional set size) of processes, from /proc/PID/smaps_rollup, and the process
// sets a benchmark weighs: the sandboxer (or the baseline's shims), the per-pod processes
// (holders, VMMs, pause containers), the whole node. Reads /proc only; thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kuasar::harness {

// PSS of one process in KiB; NOT_FOUND once it is gone.
absl::StatusOr<uint64_t> ReadPssKiB(pid_t pid);

// Which processes belong to a set: argv[0]'s basename is one of `names`, and (when set)
// some argument contains `scope` (e.g. this run's containerd root or state dir, so other
// runs on the machine are not counted).
struct ProcessMatcher {
  std::vector<std::string> names;
  std::string scope;
  bool Matches(const std::vector<std::string>& argv) const;
};

struct SetSample {
  uint64_t pss_kib = 0;
  int processes = 0;
};

std::vector<pid_t> FindProcesses(const ProcessMatcher& matcher);
SetSample SamplePss(const ProcessMatcher& matcher);
// Every process on the machine.
SetSample SampleNodePss();

}  // namespace kuasar::harness
