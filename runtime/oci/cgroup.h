// Cgroups for containers and pods: where a cgroups path (OCI linux.cgroupsPath, cgroupfs
// semantics) lives on this host, creating and removing it, and its metrics in the
// containerd cgroups protos that Task.Stats and CRI's ContainerStats read.
// v1 vs v2 is detected at run time. Every call is a few syscalls on cgroupfs; a
// CgroupHierarchy is immutable after Load and safe to share between threads.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/core/sandbox_backend.h"

namespace kuasar {

enum class CgroupMode {
  kV1,  // legacy or hybrid: per-controller hierarchies (a cgroup2 mount beside them is ignored)
  kV2,  // unified: one hierarchy
};

// Where Load reads the host's layout; tests point these at fakes.
struct CgroupSources {
  std::string mountinfo = "/proc/self/mountinfo";
  std::string self_cgroup = "/proc/self/cgroup";  // for relative cgroups paths
  // The host is v2 iff <unified_root>/cgroup.controllers exists.
  std::string unified_root = "/sys/fs/cgroup";
  std::string partitions = "/proc/partitions";  // block device names for blkio
  std::string hugepages = "/sys/kernel/mm/hugepages";
};

// "io.containerd.cgroups.v1.Metrics" / "io.containerd.cgroups.v2.Metrics".
inline constexpr std::string_view kCgroupV1MetricsType = "io.containerd.cgroups.v1.Metrics";
inline constexpr std::string_view kCgroupV2MetricsType = "io.containerd.cgroups.v2.Metrics";

class CgroupHierarchy {
 public:
  static absl::StatusOr<CgroupHierarchy> Load(const CgroupSources& sources = {});
  // The host's hierarchy, loaded once on first use.
  static absl::StatusOr<const CgroupHierarchy*> Host();

  CgroupMode mode() const { return mode_; }

  // The directory of `cgroups_path` for `controller` (v2: the one unified directory).
  // An absolute path is taken from the controller's mount point, a relative one from
  // our own cgroup, as runc and crun do with cgroupfs. ".." is refused.
  absl::StatusOr<std::string> ControllerPath(std::string_view controller,
                                             std::string_view cgroups_path) const;
  // v1: mkdir -p in memory, cpu, cpuacct and pids (those mounted); v2: in the unified
  // tree, enabling the parent's controllers for it on the way down (best effort).
  absl::Status Create(std::string_view cgroups_path) const;
  absl::Status AddProcess(std::string_view cgroups_path, pid_t pid) const;
  // rmdir in every hierarchy, child cgroups first, retrying while tasks drain (EBUSY)
  // until `timeout`. A cgroup that is already gone is fine.
  absl::Status Remove(std::string_view cgroups_path,
                      absl::Duration timeout = absl::Seconds(2)) const;
  // A serialized io.containerd.cgroups.v1.Metrics (v1 host) or .v2.Metrics (v2 host).
  // NOT_FOUND if the cgroup exists in no hierarchy.
  absl::StatusOr<MetricSample> ReadMetrics(std::string_view cgroups_path) const;

 private:
  struct Mount {
    std::string dir;   // mount point
    std::string root;  // the cgroup mounted there (mountinfo field 4)
  };
  absl::StatusOr<std::string> Resolve(const Mount& mount, std::string_view own,
                                      std::string_view cgroups_path) const;
  absl::StatusOr<std::string> MetricsV1(std::string_view cgroups_path) const;
  absl::StatusOr<std::string> MetricsV2(const std::string& dir) const;

  CgroupSources sources_;
  CgroupMode mode_ = CgroupMode::kV1;
  std::map<std::string, Mount, std::less<>> v1_;  // controller -> its mount
  Mount unified_;
  std::map<std::string, std::string, std::less<>> own_;  // controller ("" for v2) -> our cgroup
};

// The same operations on the host's hierarchy.
absl::StatusOr<std::string> ControllerPath(std::string_view controller,
                                           std::string_view cgroups_path);
absl::Status CreateCgroup(std::string_view cgroups_path);
absl::Status AddProcess(std::string_view cgroups_path, pid_t pid);
absl::Status RemoveCgroup(std::string_view cgroups_path);
absl::StatusOr<MetricSample> ReadMetrics(std::string_view cgroups_path);

}  // namespace kuasar
