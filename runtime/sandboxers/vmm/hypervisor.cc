#include "runtime/sandboxers/vmm/hypervisor.h"

#include "absl/strings/str_format.h"
#include "runtime/base/child_process.h"

namespace kuasar::vmm {

std::string AgentChannel::TaskAddress() const {
  switch (kind) {
    case Kind::kHybridVsock:
      return absl::StrFormat("hvsock://%s:%d", path, port);
    case Kind::kVsock:
      return absl::StrFormat("vsock://%d:%d", cid, port);
    case Kind::kUnix:
      return absl::StrFormat("unix://%s", path);
    case Kind::kSerialSocket:
      break;
  }
  return "";
}

uint32_t VmExit::ExitStatus() const {
  if (wait_status >= 0) return static_cast<uint32_t>(ExitCodeFromWaitStatus(wait_status));
  // A VMM we reattached to is not our child: only its last words are known.
  return reason == "guest-shutdown" || reason == "host-qmp-quit" ? 0 : 255;
}

absl::Status Hypervisor::AddDisk(const DiskDevice&) {
  return absl::UnimplementedError("this VMM driver cannot hotplug disks");
}
absl::Status Hypervisor::RemoveDisk(std::string_view) {
  return absl::UnimplementedError("this VMM driver cannot hotplug disks");
}
absl::Status Hypervisor::AddNet(const NetDevice&) {
  return absl::UnimplementedError("this VMM driver cannot hotplug network devices");
}
absl::Status Hypervisor::RemoveNet(std::string_view) {
  return absl::UnimplementedError("this VMM driver cannot hotplug network devices");
}

}  // namespace kuasar::vmm
