// The QEMU-style command line that QEMU and StratoVirt share: single-dash options, some
// taking one argument ("-m 1G"), some none ("-S"), option strings in QemuOpts syntax.
// Tokenizing follows each binary's option table; errors use its wording:
//   QEMU:       "qemu-system-x86_64: -foo: invalid option", "-m: requires an argument"
//   StratoVirt: "Found argument '-foo' which wasn't expected, or isn't valid in this context."
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/common/option_list.h"
#include "sim/common/qmp_session.h"

namespace kuasar::sim {

// One option as given: "-chardev" + its argument (empty for flags).
struct CmdlineOption {
  std::string name;  // without the leading dash(es): "chardev"
  std::string arg;
  bool has_arg = false;
};

struct QemuCmdline {
  std::vector<CmdlineOption> options;  // in order
  bool Has(std::string_view name) const;
  // The last argument given to `name` (QEMU: the last -m wins).
  std::optional<std::string> Last(std::string_view name) const;
  std::vector<std::string> All(std::string_view name) const;
};

// `prog` is the program name errors start with (argv[0]'s basename for QEMU).
absl::StatusOr<QemuCmdline> TokenizeQemuCmdline(QmpDialect dialect,
                                                const std::vector<std::string>& args,
                                                const std::string& prog);

}  // namespace kuasar::sim
