#include "runtime/sandboxers/vmm/common/vmm_capabilities.h"

#include <unistd.h>

#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/base/status_macros.h"

namespace kuasar::vmm {
namespace {

// linux/capability.h, by bit.
constexpr std::array<std::string_view, 41> kCapabilityNames = {
    "chown",           "dac_override",     "dac_read_search", "fowner",
    "fsetid",          "kill",             "setgid",          "setuid",
    "setpcap",         "linux_immutable",  "net_bind_service", "net_broadcast",
    "net_admin",       "net_raw",          "ipc_lock",        "ipc_owner",
    "sys_module",      "sys_rawio",        "sys_chroot",      "sys_ptrace",
    "sys_pacct",       "sys_admin",        "sys_boot",        "sys_nice",
    "sys_resource",    "sys_time",         "sys_tty_config",  "mknod",
    "lease",           "audit_write",      "audit_control",   "setfcap",
    "mac_override",    "mac_admin",        "syslog",          "wake_alarm",
    "block_suspend",   "audit_read",       "perfmon",         "bpf",
    "checkpoint_restore"};

}  // namespace

int CapabilityBit(std::string_view name) {
  for (size_t i = 0; i < kCapabilityNames.size(); ++i) {
    if (kCapabilityNames[i] == name) return static_cast<int>(i);
  }
  return -1;
}

absl::Status ParseVmmCapabilities(TomlSection& s, VmmCapabilities* out) {
  // Absent, the default list stands and goes through the same checks.
  std::vector<std::string> names = VmmCapabilities{}.keep;
  RETURN_IF_ERROR(s.Get("vmm_capabilities", &names));
  VmmCapabilities caps;
  caps.keep.clear();
  for (const std::string& raw : names) {
    std::string name = absl::AsciiStrToLower(raw);
    if (absl::StartsWith(name, "cap_")) name.erase(0, 4);
    if (name == "all") {
      if (names.size() != 1) {
        return s.Error("vmm_capabilities", "\"all\" keeps everything: give it alone");
      }
      caps.keep_all = true;
      break;
    }
    if (CapabilityBit(name) < 0) {
      return s.Error("vmm_capabilities",
                     absl::StrFormat("unknown capability \"%s\" (names as in capabilities(7), "
                                     "e.g. \"net_admin\"; or [\"all\"])",
                                     raw));
    }
    caps.keep.push_back(name);
  }
  *out = std::move(caps);
  return absl::OkStatus();
}

std::vector<std::string> WithCapabilities(const VmmCapabilities& caps, const std::string& setpriv,
                                          std::vector<std::string> argv) {
  if (caps.keep_all) return argv;
  std::string bounding = "-all";
  for (const std::string& c : caps.keep) bounding += ",+" + c;
  std::vector<std::string> out = {setpriv, "--bounding-set=" + bounding, "--inh-caps=-all",
                                  "--ambient-caps=-all", "--no-new-privs", "--"};
  out.insert(out.end(), std::make_move_iterator(argv.begin()),
             std::make_move_iterator(argv.end()));
  return out;
}

absl::StatusOr<std::string> FindSetpriv(const VmmCapabilities& caps) {
  if (caps.keep_all) return std::string();
  for (const char* p : {"/usr/bin/setpriv", "/bin/setpriv", "/usr/local/bin/setpriv"}) {
    if (::access(p, X_OK) == 0) return std::string(p);
  }
  return absl::FailedPreconditionError(
      "vmm_capabilities limits the VMM's capabilities through setpriv, which is not "
      "installed (Debian package util-linux); install it or set vmm_capabilities = [\"all\"]");
}

}  // namespace kuasar::vmm
