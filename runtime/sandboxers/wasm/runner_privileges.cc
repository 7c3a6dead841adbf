#include "runtime/sandboxers/wasm/runner_privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>

#include "absl/strings/str_format.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/status_macros.h"

namespace kuasar {
namespace {

#define KUASAR_CAP(name) \
  { #name, name }
const std::map<std::string, int, std::less<>>& CapabilityNumbers() {
  static const auto* caps =
      new std::map<std::string, int, std::less<>>{KUASAR_CAP(CAP_CHOWN),
                                                  KUASAR_CAP(CAP_DAC_OVERRIDE),
                                                  KUASAR_CAP(CAP_DAC_READ_SEARCH),
                                                  KUASAR_CAP(CAP_FOWNER),
                                                  KUASAR_CAP(CAP_FSETID),
                                                  KUASAR_CAP(CAP_KILL),
                                                  KUASAR_CAP(CAP_SETGID),
                                                  KUASAR_CAP(CAP_SETUID),
                                                  KUASAR_CAP(CAP_SETPCAP),
                                                  KUASAR_CAP(CAP_LINUX_IMMUTABLE),
                                                  KUASAR_CAP(CAP_NET_BIND_SERVICE),
                                                  KUASAR_CAP(CAP_NET_BROADCAST),
                                                  KUASAR_CAP(CAP_NET_ADMIN),
                                                  KUASAR_CAP(CAP_NET_RAW),
                                                  KUASAR_CAP(CAP_IPC_LOCK),
                                                  KUASAR_CAP(CAP_IPC_OWNER),
                                                  KUASAR_CAP(CAP_SYS_MODULE),
                                                  KUASAR_CAP(CAP_SYS_RAWIO),
                                                  KUASAR_CAP(CAP_SYS_CHROOT),
                                                  KUASAR_CAP(CAP_SYS_PTRACE),
                                                  KUASAR_CAP(CAP_SYS_PACCT),
                                                  KUASAR_CAP(CAP_SYS_ADMIN),
                                                  KUASAR_CAP(CAP_SYS_BOOT),
                                                  KUASAR_CAP(CAP_SYS_NICE),
                                                  KUASAR_CAP(CAP_SYS_RESOURCE),
                                                  KUASAR_CAP(CAP_SYS_TIME),
                                                  KUASAR_CAP(CAP_SYS_TTY_CONFIG),
                                                  KUASAR_CAP(CAP_MKNOD),
                                                  KUASAR_CAP(CAP_LEASE),
                                                  KUASAR_CAP(CAP_AUDIT_WRITE),
                                                  KUASAR_CAP(CAP_AUDIT_CONTROL),
                                                  KUASAR_CAP(CAP_SETFCAP),
                                                  KUASAR_CAP(CAP_MAC_OVERRIDE),
                                                  KUASAR_CAP(CAP_MAC_ADMIN),
                                                  KUASAR_CAP(CAP_SYSLOG),
                                                  KUASAR_CAP(CAP_WAKE_ALARM),
                                                  KUASAR_CAP(CAP_BLOCK_SUSPEND),
                                                  KUASAR_CAP(CAP_AUDIT_READ),
                                                  KUASAR_CAP(CAP_PERFMON),
                                                  KUASAR_CAP(CAP_BPF),
                                                  KUASAR_CAP(CAP_CHECKPOINT_RESTORE)};
  return *caps;
}
#undef KUASAR_CAP

uint64_t Mask(const std::vector<std::string>& names) {
  uint64_t m = 0;
  for (const std::string& n : names) {
    auto it = CapabilityNumbers().find(n);
    if (it != CapabilityNumbers().end()) m |= uint64_t{1} << it->second;
  }
  return m;
}

int LastCap() {
  auto text = ReadSmallFile("/proc/sys/kernel/cap_last_cap", 64);
  int last = CAP_LAST_CAP;
  if (text.ok()) last = std::atoi(text->c_str());
  return last > 0 && last < 64 ? last : CAP_LAST_CAP;
}

absl::Status DropBoundingSet(const CapabilitySets& caps) {
  uint64_t keep = Mask(caps.bounding);
  for (int cap = 0; cap <= LastCap(); ++cap) {
    if (keep & (uint64_t{1} << cap)) continue;
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      return ErrnoStatus(errno, "prctl", absl::StrFormat("PR_CAPBSET_DROP %d", cap));
    }
  }
  return absl::OkStatus();
}

absl::Status SetCapabilities(const CapabilitySets& caps) {
  uint64_t eff = Mask(caps.effective), perm = Mask(caps.permitted), inh = Mask(caps.inheritable);
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  for (int i = 0; i < 2; ++i) {
    data[i].effective = static_cast<uint32_t>(eff >> (32 * i));
    data[i].permitted = static_cast<uint32_t>(perm >> (32 * i));
    data[i].inheritable = static_cast<uint32_t>(inh >> (32 * i));
  }
  if (::syscall(SYS_capset, &hdr, data) != 0) return ErrnoStatus(errno, "capset");
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyRlimits(const WasmContainerSpec& spec) {
  for (const Rlimit& r : spec.rlimits) {
    rlimit rl{r.soft, r.hard};
    if (::setrlimit(r.resource, &rl) != 0) {
      return ErrnoStatus(errno, "setrlimit", absl::StrFormat("resource %d", r.resource));
    }
  }
  return absl::OkStatus();
}

absl::Status DropPrivileges(const WasmContainerSpec& spec) {
  if (spec.capabilities) RETURN_IF_ERROR(DropBoundingSet(*spec.capabilities));
  if (spec.uid != 0 || spec.gid != 0 || !spec.additional_gids.empty()) {
    if (::setgroups(spec.additional_gids.size(), spec.additional_gids.data()) != 0) {
      return ErrnoStatus(errno, "setgroups");
    }
    if (::setresgid(spec.gid, spec.gid, spec.gid) != 0) return ErrnoStatus(errno, "setresgid");
    if (::setresuid(spec.uid, spec.uid, spec.uid) != 0) return ErrnoStatus(errno, "setresuid");
  }
  if (spec.capabilities && spec.uid == 0) RETURN_IF_ERROR(SetCapabilities(*spec.capabilities));
  if (spec.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return ErrnoStatus(errno, "prctl", "PR_SET_NO_NEW_PRIVS");
  }
  return absl::OkStatus();
}

}  // namespace kuasar
