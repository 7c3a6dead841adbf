// virtiofsd: the daemon serving one VM's shared directory over vhost-user for virtio-fs
// (QEMU, Cloud Hypervisor). It is started before the VMM, which connects to its socket,
// and exits by itself when the VMM disconnects. Speaks both QEMU's C virtiofsd (QEMU up
// to 7.2, /usr/lib/qemu/virtiofsd, "-o source=") and the Rust one ("--shared-dir").
// Thread-safe (no shared state).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/sandboxers/vmm/common/vmm_process.h"

namespace kuasar::vmm {

struct VirtiofsdOptions {
  std::string daemon_path = "/usr/lib/qemu/virtiofsd";
  bool rust = false;  // DetectVirtiofsdFlavor
  std::string socket_path;
  std::string shared_dir;
  std::string cache = "auto";  // auto | always | never (C: none)
  bool read_only = false;      // the Rust daemon only
  std::vector<std::string> extra_args;
  std::string log_path;
};

// True for the Rust daemon ("virtiofsd 1.x"), false for QEMU's ("virtiofsd version 7.x").
absl::StatusOr<bool> DetectVirtiofsdFlavor(const std::string& daemon_path);

absl::StatusOr<std::vector<std::string>> VirtiofsdArgv(const VirtiofsdOptions& options);

// Spawns it and waits until its socket exists (or `deadline`, or it exits).
absl::StatusOr<std::unique_ptr<VmmProcess>> StartVirtiofsd(boost::asio::io_context& io,
                                                           const VirtiofsdOptions& options,
                                                           absl::Time deadline);

}  // namespace kuasar::vmm
