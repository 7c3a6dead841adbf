// VmmCapabilities: which Linux capabilities a VMM process keeps. The sandboxer runs as
// root; a VMM needs almost none of root's power (QEMU, Cloud Hypervisor, Firecracker and
// StratoVirt open an existing tap in the pod's netns, which takes CAP_NET_ADMIN, and
// otherwise only files and sockets the sandboxer made for them). So each VMM is started
// through util-linux's setpriv with its bounding set cut to the kept capabilities (root
// then gets just those at exec), nothing inheritable or ambient, and no_new_privs.
// Config: [hypervisor] vmm_capabilities = ["net_admin"] (the default); ["all"] keeps
// everything (the fake VMM, which runs the guest agent in namespaces, needs that).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/core/toml_section.h"

namespace kuasar::vmm {

struct VmmCapabilities {
  bool keep_all = false;
  std::vector<std::string> keep = {"net_admin"};  // lower case, no "cap_" prefix
};

// Reads `vmm_capabilities` from a [hypervisor] section (absent: the default). Names may
// be given as "net_admin" or "CAP_NET_ADMIN"; unknown names are refused.
absl::Status ParseVmmCapabilities(TomlSection& hypervisor, VmmCapabilities* out);

// `argv` run with only `caps`: setpriv's argv in front of it, or `argv` itself when
// keep_all. `setpriv` is its path (FindSetpriv).
std::vector<std::string> WithCapabilities(const VmmCapabilities& caps, const std::string& setpriv,
                                          std::vector<std::string> argv);

// setpriv's path when `caps` needs it: FAILED_PRECONDITION naming the package when it is
// missing; "" when keep_all.
absl::StatusOr<std::string> FindSetpriv(const VmmCapabilities& caps);

// The bit of a capability name ("net_admin"), or -1.
int CapabilityBit(std::string_view name);

}  // namespace kuasar::vmm
