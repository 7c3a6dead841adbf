// ProcessIdentity: a pid plus its kernel start time, so a recorded process is never
// confused with an unrelated one that reused its pid after a restart.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "runtime/base/unique_fd.h"

namespace kuasar {

struct ProcessIdentity {
  pid_t pid = 0;
  uint64_t start_time = 0;  // /proc/<pid>/stat field 22 (clock ticks since boot)
  bool operator==(const ProcessIdentity&) const = default;
};

// NOT_FOUND if the process is gone.
absl::StatusOr<ProcessIdentity> IdentifyProcess(pid_t pid);

// True if `id` is still the same live process (not a zombie, not a reused pid).
bool IsSameProcessAlive(const ProcessIdentity& id);

// pidfd_open, then a second identity check to close the reuse race.
absl::StatusOr<UniqueFd> OpenPidfd(const ProcessIdentity& id);

}  // namespace kuasar
