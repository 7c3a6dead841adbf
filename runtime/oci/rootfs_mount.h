// Mounting the rootfs containerd hands to Task.Create (a list of containerd.types.Mount,
// usually one overlay) onto <bundle>/rootfs, as containerd's runc shim does, and taking
// it down again. mount(2) is called directly with the fstab-style options translated to
// flags and data; overlay options longer than a page are shortened by mounting from a
// child that changes into the lowerdirs' common parent, so the daemon never chdirs.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "runtime/core/sandbox_record.h"

namespace kuasar {

struct ParsedMountOptions {
  unsigned long flags = 0;
  unsigned long propagation = 0;
  std::vector<std::string> data;
};

// fstab options -> mount(2) flags + data (same table as containerd's mount package).
absl::StatusOr<ParsedMountOptions> ParseMountOptions(const std::vector<std::string>& options);

// Mounts every entry in order onto `target` (the first at target, the others stacked).
absl::Status MountRootfs(const std::vector<MountSpec>& mounts, const std::string& target);

// Unmounts everything at `target` (MNT_DETACH as a fallback when busy). Missing is OK.
absl::Status UnmountAll(const std::string& target);

}  // namespace kuasar
