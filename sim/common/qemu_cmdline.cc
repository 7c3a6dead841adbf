#include "sim/common/qemu_cmdline.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace kuasar::sim {
namespace {

// QEMU 7.2's options (qemu-options.hx) that the simulator accepts, with or without an
// argument. Options absent here are "invalid option", as QEMU says of unknown ones.
const char* const kQemuWithArg[] = {"name",
                                    "uuid",
                                    "machine",
                                    "M",
                                    "cpu",
                                    "smp",
                                    "m",
                                    "kernel",
                                    "initrd",
                                    "append",
                                    "dtb",
                                    "pidfile",
                                    "qmp",
                                    "qmp-pretty",
                                    "chardev",
                                    "device",
                                    "fsdev",
                                    "virtfs",
                                    "netdev",
                                    "nic",
                                    "object",
                                    "serial",
                                    "monitor",
                                    "mon",
                                    "accel",
                                    "drive",
                                    "blockdev",
                                    "global",
                                    "numa",
                                    "vga",
                                    "display",
                                    "D",
                                    "d",
                                    "rtc",
                                    "boot",
                                    "bios",
                                    "L",
                                    "msg",
                                    "sandbox",
                                    "overcommit",
                                    "k",
                                    "incoming",
                                    "runas",
                                    "smbios",
                                    "icount",
                                    "trace",
                                    "parallel",
                                    "action",
                                    "add-fd",
                                    "fw_cfg",
                                    "plugin",
                                    "readconfig",
                                    "mem-path",
                                    "watchdog-action",
                                    "audiodev",
                                    "cdrom",
                                    "hda",
                                    "usbdevice",
                                    "machine-type",
                                    "chroot",
                                    "iscsi",
                                    "compat",
                                    "loadvm",
                                    "option-rom",
                                    "spice",
                                    "vnc",
                                    "tpmdev"};
const char* const kQemuFlags[] = {"nographic",
                                  "nodefaults",
                                  "no-reboot",
                                  "no-shutdown",
                                  "daemonize",
                                  "enable-kvm",
                                  "S",
                                  "no-user-config",
                                  "no-hpet",
                                  "no-acpi",
                                  "snapshot",
                                  "mem-prealloc",
                                  "version",
                                  "help",
                                  "h",
                                  "full-screen",
                                  "no-fd-bootchk",
                                  "preconfig",
                                  "only-migratable",
                                  "enable-sync-profile"};

// StratoVirt's (docs/config_guidebook.md).
const char* const kSvWithArg[] = {"name",
                                  "uuid",
                                  "machine",
                                  "smp",
                                  "m",
                                  "kernel",
                                  "initrd",
                                  "append",
                                  "pidfile",
                                  "qmp",
                                  "api-channel",
                                  "chardev",
                                  "device",
                                  "drive",
                                  "netdev",
                                  "object",
                                  "serial",
                                  "mon",
                                  "global",
                                  "numa",
                                  "D",
                                  "incoming",
                                  "smbios",
                                  "trace",
                                  "mem-path",
                                  "display",
                                  "cpu",
                                  "accel",
                                  "windows_emu_pid",
                                  "overcommit",
                                  "cameradev",
                                  "audiodev",
                                  "iothread",
                                  "vnc",
                                  "boot"};
const char* const kSvFlags[] = {
    "daemonize",  "disable-seccomp", "S", "freeze_cpu", "mem-prealloc", "version", "V", "help", "h",
    "nodefaults", "nographic"};

template <size_t N>
bool In(const char* const (&list)[N], std::string_view s) {
  return std::find_if(std::begin(list), std::end(list), [&](const char* e) { return s == e; }) !=
         std::end(list);
}

}  // namespace

bool QemuCmdline::Has(std::string_view name) const {
  return std::any_of(options.begin(), options.end(),
                     [&](const CmdlineOption& o) { return o.name == name; });
}

std::optional<std::string> QemuCmdline::Last(std::string_view name) const {
  std::optional<std::string> v;
  for (const auto& o : options) {
    if (o.name == name) v = o.arg;
  }
  return v;
}

std::vector<std::string> QemuCmdline::All(std::string_view name) const {
  std::vector<std::string> v;
  for (const auto& o : options) {
    if (o.name == name) v.push_back(o.arg);
  }
  return v;
}

absl::StatusOr<QemuCmdline> TokenizeQemuCmdline(QmpDialect dialect,
                                                const std::vector<std::string>& args,
                                                const std::string& prog) {
  const bool qemu = dialect == QmpDialect::kQemu;
  QemuCmdline out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() < 2 || a[0] != '-') {
      if (qemu) {
        // QEMU takes a bare word as the hda image; the simulator has no disk model for it.
        return absl::InvalidArgumentError(absl::StrFormat("%s: %s: invalid option", prog, a));
      }
      return absl::InvalidArgumentError(absl::StrFormat(
          "Found argument '%s' which wasn't expected, or isn't valid in this context.", a));
    }
    std::string name = a.substr(a[1] == '-' ? 2 : 1);  // QEMU also takes --opt
    bool with_arg = qemu ? In(kQemuWithArg, name) : In(kSvWithArg, name);
    bool flag = qemu ? In(kQemuFlags, name) : In(kSvFlags, name);
    if (!with_arg && !flag) {
      if (qemu)
        return absl::InvalidArgumentError(absl::StrFormat("%s: %s: invalid option", prog, a));
      return absl::InvalidArgumentError(absl::StrFormat(
          "Found argument '%s' which wasn't expected, or isn't valid in this context.", a));
    }
    CmdlineOption opt{name, "", false};
    // StratoVirt's -D takes an optional log path.
    bool optional_arg = !qemu && name == "D";
    if (with_arg) {
      if (i + 1 < args.size() && !(optional_arg && args[i + 1].rfind("-", 0) == 0)) {
        opt.arg = args[++i];
        opt.has_arg = true;
      } else if (!optional_arg) {
        if (qemu)
          return absl::InvalidArgumentError(
              absl::StrFormat("%s: %s: requires an argument", prog, a));
        return absl::InvalidArgumentError(
            absl::StrFormat("The argument '%s' requires a value but none was supplied", a));
      }
    }
    out.options.push_back(std::move(opt));
  }
  return out;
}

}  // namespace kuasar::sim
