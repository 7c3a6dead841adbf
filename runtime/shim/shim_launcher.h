// `start` for a pod's sandbox container: launches the detached per-pod shim daemon
// ("serve": double fork, new session, stdio to the pod's log) and waits until it reports
// on a pipe that the VM's agent answers. containerd waits for `start` to exit and reads
// its stdout, so nothing of the daemon may keep that pipe open.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "runtime/shim/shim_args.h"

namespace kuasar::shim {

// Returns once the daemon wrote "ok" (OK) or an error line (that error), or `timeout`.
absl::Status LaunchShimDaemon(const ShimArgs& args, const std::string& log_path,
                              absl::Duration timeout);

// In the daemon, first thing: the VMM and agent it spawns must not inherit the ready fd.
void KeepReadyFdPrivate(int ready_fd);
// In the daemon: report readiness (empty message) or the failure on the ready fd.
void ReportReady(int ready_fd, const absl::Status& status);

}  // namespace kuasar::shim
