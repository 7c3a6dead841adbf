// KernelCmdline: the guest kernel command line, built the same way by every VMM driver:
// the parameters a kuasar guest boots with, then the operator's kernel_params, then the
// arguments for the agent (after "--"). Plain value type; not thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kuasar::vmm {

struct GuestBootOptions {
  std::string console = "ttyS0";  // the serial console the VMM logs (hvc0 for virtio)
  bool debug = false;             // keep kernel messages; agent log level debug
  std::string share_fs;           // "virtiofs", "9p" or "" (none): task.sharefs_type
};

class KernelCmdline {
 public:
  // The kuasar guest defaults: console, panic=-1 (with the VMM's no-reboot a panic ends
  // the VM instead of hanging it), quiet unless debug, boot-time tuning that skips
  // probes a VM does not need, and the agent's task.* parameters (Kuasar's names).
  static KernelCmdline ForGuest(const GuestBootOptions& options);

  // key=value, replacing every earlier value of `key` where the first one stood.
  KernelCmdline& Set(std::string_view key, std::string_view value);
  // A parameter without a value ("quiet"); kept once.
  KernelCmdline& Flag(std::string_view flag);
  KernelCmdline& Remove(std::string_view key);
  // An argument for init (after "--").
  KernelCmdline& AddInitArg(std::string_view arg);
  // Applies an operator's string ("a=b c d=\"x y\" -- init args"): each key it names
  // replaces the defaults of that key, while keys it repeats are all kept (console=
  // twice means two consoles).
  absl::Status Merge(std::string_view params);

  std::optional<std::string> Get(std::string_view key) const;
  bool Has(std::string_view key) const;
  // At most 2047 bytes (x86 COMMAND_LINE_SIZE), printable ASCII only.
  absl::StatusOr<std::string> Build() const;

 private:
  struct Param {
    std::string key;
    std::optional<std::string> value;
  };
  std::vector<Param> params_;
  std::vector<std::string> init_args_;
};

}  // namespace kuasar::vmm
