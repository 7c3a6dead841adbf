// SharedBundle: a container's bundle made visible to a VM that cannot see host paths.
// containerd's Task.Create names a host bundle dir and host rootfs mounts; here the rootfs
// is mounted (and the spec's bind sources bound) under the pod's shared dir, which
// virtiofsd exports to the guest, and config.json is rewritten for the guest's view.
// The shared dir is a mount point with shared propagation so that mounts made after
// virtiofsd started reach its mount namespace. Blocking (mount(2)); thread-compatible.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/core/sandbox_record.h"

namespace kuasar {

// Makes `dir` a mount point of its own (a bind onto itself) with shared propagation.
// Idempotent.
absl::Status MakeSharedMountPoint(const std::string& dir);

// Mount points at or below `dir` in this mount namespace, deepest first.
absl::StatusOr<std::vector<std::string>> MountPointsUnder(const std::string& dir);

// Unmounts everything at or below `dir` (lazily when busy); fails if a mount stays, so
// that a caller never deletes through a mount.
absl::Status UnmountTree(const std::string& dir);

// config.json as the guest must see it (pure):
// - root.path "rootfs" (the rootfs is mounted beside it);
// - bind mounts of /etc/hosts, /etc/hostname, /etc/resolv.conf dropped (the agent binds
//   the pod's own, written by SetupSandbox); /dev/shm bound from the guest's /dev/shm;
// - every other bind with an absolute source gets the source "<guest_dir>/mounts/<n>",
//   and `binds` says which host path goes to "mounts/<n>";
// - host LSM labels (AppArmor profile, SELinux labels) and hooks dropped: they name
//   things that exist on the host only.
struct GuestBind {
  std::string host_source;
  std::string rel;  // "mounts/<n>"
  bool read_only = false;
};
struct GuestSpec {
  nlohmann::json spec;
  std::vector<GuestBind> binds;
};
absl::StatusOr<GuestSpec> RewriteSpecForGuest(nlohmann::json spec, const std::string& guest_dir);

// Into <host_shared>/<id>: rootfs/ (the rootfs mounts, or the bundle's rootfs bound when
// containerd mounted it already), mounts/<n> (binds) and config.json (rewritten). On
// error nothing stays. Returns the guest's bundle path, <guest_shared>/<id>.
absl::StatusOr<std::string> ShareBundle(const std::string& host_shared,
                                        const std::string& guest_shared, const std::string& id,
                                        const std::string& host_bundle,
                                        const std::vector<MountSpec>& rootfs);

// Undoes ShareBundle: unmounts everything below <host_shared>/<id> and removes it.
absl::Status UnshareBundle(const std::string& host_shared, const std::string& id);

}  // namespace kuasar
