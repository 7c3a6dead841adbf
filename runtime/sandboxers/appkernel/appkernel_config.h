// [appkernel] config: which application kernel runs the pods and how. gVisor's runsc is
// the one that can be had here; Quark (Kuasar's own App Kernel) has no source reachable,
// so `runtime = "quark"` parses but the sandboxer refuses to start with the reason.
// Pure functions; thread-compatible.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/core/config.h"
#include "runtime/sandboxers/runc/holder_pod_backend.h"

namespace kuasar {

struct AppKernelConfig {
  std::string runtime = "runsc";      // runsc on PATH, a path to runsc, or "quark" (refused)
  std::string root;                   // runsc --root; default <state_dir>/runsc
  std::string platform = "systrap";   // runsc --platform: systrap | ptrace | kvm
  std::string network = "sandbox";    // runsc --network: sandbox (netstack) | host | none
  std::vector<std::string> flags;     // more runsc global flags, each "--name=value"
  std::string waiter;                 // kuasar-appkernel-wait beside the executable
  std::string pause;                  // kuasar-appkernel-pause beside the executable
  HolderPodConfig pod;                // holder, pod_cgroup_parent, holder_timeout_ms
};

absl::StatusOr<AppKernelConfig> ParseAppKernelConfig(const Config& config);

// Why this config cannot run pods ("" if it can, as far as config tells): Quark.
std::string AppKernelRuntimeProblem(const AppKernelConfig& config);

// The global flags every runsc command gets (after --root): platform, network, `flags`.
std::vector<std::string> RunscGlobalFlags(const AppKernelConfig& config);

}  // namespace kuasar
