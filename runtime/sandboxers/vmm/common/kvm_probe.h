// KVM probe: whether this host can really run a guest under KVM. /dev/kvm existing is
// not enough (nested virtualization may accept ioctls and then hang the guest after its
// boot stub), so the probe boots the guest image with -accel kvm and waits, briefly, for
// its userspace. The answer is cached per host boot (keyed by the kernel's boot_id).
// Functions are thread-safe; ProbeKvm blocks up to its timeout on a first call.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kuasar::vmm {

struct KvmProbeOptions {
  std::string qemu_path = "/usr/bin/qemu-system-x86_64";
  std::string kernel_path;  // the guest image; its initramfs must have /bin/busybox
  std::string initrd_path;
  std::string machine = "q35";
  std::string cpu_model = "host";
  absl::Duration timeout = absl::Seconds(5);
  std::string device = "/dev/kvm";
  // Where the answer is kept for this host boot; empty: no cache.
  std::string cache_path = "/run/kuasar/kvm-probe.json";
};

struct KvmProbeResult {
  bool usable = false;
  std::string reason;   // why not, or what worked ("guest userspace in 412ms")
  absl::Duration took;  // of the probe itself (zero when cached)
  bool from_cache = false;
};

// An error only when the probe itself cannot run (no QEMU binary, unwritable temp dir);
// an unusable KVM is a result with its reason.
absl::StatusOr<KvmProbeResult> ProbeKvm(const KvmProbeOptions& options);

// The cheap part: opens `device` and creates a VM through the KVM API. OK or why not.
absl::Status CheckKvmDevice(const std::string& device = "/dev/kvm");

// /proc/sys/kernel/random/boot_id: changes at every host boot.
absl::StatusOr<std::string> HostBootId();

}  // namespace kuasar::vmm
