// PID 1's duties, per mode (see AgentOptions::init). vm: mount /proc /sys /dev /dev/pts
// /dev/shm /run /tmp and the cgroup hierarchy (v2 when the kernel has cgroup2, else
// every v1 controller), load /etc/kuasar/modules with finit_module, bring lo up and mount
// the host share the kernel command line names (task.sharefs_type=virtiofs|9p, tag
// "kuasar", at /run/kuasar/shared). namespace: make / rslave and mount a fresh /proc.
// none: become a child subreaper. Run once from main(), before any thread starts.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "runtime/guest/agent_options.h"

namespace kuasar::guest {

inline constexpr char kGuestSharedDir[] = "/run/kuasar/shared";
inline constexpr char kModulesList[] = "/etc/kuasar/modules";

// Does `mode`'s setup. In vm mode a failure to mount one of the essentials is an
// error; optional pieces (a module, a cgroup controller, the share) only log.
absl::Status InitGuest(InitMode mode);

// Loads every module listed in `list_path` (one path per line; '#' comments); returns
// how many loaded (already-loaded ones count). Missing list: 0.
int LoadKernelModules(const std::string& list_path);

// The value of `key` on a kernel command line ("" if absent).
std::string KernelParameter(std::string_view cmdline, std::string_view key);

// True when / is the kernel's initial rootfs (an initramfs that was never switched
// away from): pivot_root cannot leave it, so the OCI runtime must not pivot.
bool RootIsInitialRamfs();

// sync, then reboot(RB_POWER_OFF); never returns (PID 1 must not exit in a VM).
[[noreturn]] void PowerOff();

}  // namespace kuasar::guest
