// PrivateLibvirtd (tests): a libvirtd of the test's own. It runs in its own mount
// namespace (a slave of the host's) where /etc/libvirt, /run/libvirt, /var/lib/libvirt,
// /var/log/libvirt and /var/cache/libvirt are bind mounts of directories under the
// test's root, so it reads
// only the config written here (QEMU's stdio to files, no cgroups, no per-domain mount
// namespace) and neither sees nor disturbs the host's libvirt. Needs root. Not
// thread-safe; one per test suite.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace kuasar::vmm::testing {

inline constexpr char kLibvirtd[] = "/usr/sbin/libvirtd";

class PrivateLibvirtd {
 public:
  // FAILED_PRECONDITION / UNAVAILABLE with the reason (quoting libvirtd's log) when it
  // cannot run here: the caller skips with that message.
  static absl::StatusOr<std::unique_ptr<PrivateLibvirtd>> Start(const std::string& root);
  // SIGTERM, then SIGKILL after 10 s; reaps it.
  ~PrivateLibvirtd();

  // qemu:///system on this daemon's socket.
  std::string uri() const;
  // QEMU's log of a domain, as libvirt writes it (<root>/log/qemu/<name>.log).
  std::string QemuLog(const std::string& domain) const;
  const std::string& daemon_log() const { return log_; }

 private:
  PrivateLibvirtd(std::string root, pid_t pid) : root_(std::move(root)), pid_(pid) {
    log_ = root_ + "/libvirtd.log";
  }
  std::string root_;
  std::string log_;
  pid_t pid_;
};

}  // namespace kuasar::vmm::testing
