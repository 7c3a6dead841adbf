// Test support: OCI bundles like the ones containerd writes for a pod's containers,
// built from `crun spec` with the pod's namespaces joined through /proc/<pid>/ns, the
// test rootfs (busybox + kuasar-testinit) and a cgroup under /kuasar-test.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/core/sandbox_record.h"

namespace kuasar::testing {

struct BundleOptions {
  std::string id;
  std::vector<std::string> args;  // e.g. {"/testinit", "print", "hi"}
  bool terminal = false;
  pid_t sandbox_pid = 0;          // join its ipc/uts/net (and pid when share_pid)
  bool share_pid = false;
  std::string cgroups_path;       // default /kuasar-test/<id>
  int64_t memory_limit = 0;       // bytes; 0 = none
};

// Writes <dir>/config.json and an empty <dir>/rootfs; returns the rootfs mounts to pass
// in CreateTaskRequest (an overlay over the test rootfs with upper/work in <dir>).
absl::StatusOr<std::vector<MountSpec>> WriteBundle(const std::string& dir,
                                                   const BundleOptions& options);

// An OCI Process JSON for Exec.
std::string ProcessJson(const std::vector<std::string>& args, bool terminal);

// The test rootfs built by fixtures/ (KUASAR_TEST_ROOTFS).
std::string TestRootfs();

}  // namespace kuasar::testing
