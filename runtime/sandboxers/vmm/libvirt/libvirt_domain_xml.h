// The libvirt domain XML for one kuasar VM (the qemu driver's VM expressed as a domain:
// kernel + initrd boot, the agent's virtio-serial port on a unix socket, virtio-fs,
// taps, disks), written with libxml2's xmlTextWriter so every value is escaped, and the
// readers the driver needs of the live XML libvirt returns. Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/sandboxers/vmm/hypervisor.h"
#include "runtime/sandboxers/vmm/libvirt/libvirt_config.h"

namespace kuasar::vmm {

// Where one VM's files live; QEMU's own log is libvirt's (/var/log/libvirt/qemu/NAME.log).
struct LibvirtPaths {
  std::string agent_socket;  // <socket_dir>/agent.sock (virtio-serial agent.channel.0)
  std::string console_log;   // <state_dir>/console.log: the guest's serial console
  static LibvirtPaths For(const VmConfig& vm);
};

// "kuasar-<sandbox id>"; the id must pass ValidateId.
absl::StatusOr<std::string> DomainName(std::string_view sandbox_id);

// A path libvirt and QEMU can take as given: absolute, no "..", printable ASCII without
// ',' (QEMU's option separator), at most 1024 bytes. `what` names it in the error.
absl::Status CheckDomainPath(std::string_view path, std::string_view what);

// The guest kernel command line (KernelCmdline::ForGuest, then both kernel_params).
absl::StatusOr<std::string> LibvirtGuestCmdline(const LibvirtConfig& config, const VmConfig& vm);

// `accel` must be resolved (kKvm or kTcg); `uuid` is the domain's (lower-case, 36 chars).
absl::StatusOr<std::string> BuildDomainXml(const LibvirtConfig& config, const VmConfig& vm,
                                           const LibvirtPaths& paths, Accel accel,
                                           std::string_view uuid);

// From a live domain XML: the state libvirt keeps of a virtio channel ("connected" once the
// guest opened the port, "disconnected"), nullopt when the channel has none yet.
absl::StatusOr<std::optional<std::string>> VirtioChannelState(std::string_view domain_xml,
                                                              std::string_view port_name);

}  // namespace kuasar::vmm
