// WasmContainerSpec: what kuasar-wasm-run takes from a container's OCI runtime spec
// (config.json in its bundle). The module is process.args[0] inside the rootfs; args, env
// and cwd are the process's; the rootfs and bind mounts become WASI preopens; the pod's
// namespaces are joined by path; linux.resources and process.rlimits give the limits.
// Parsing is pure: files are looked at by the runner. Errors name the field.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/oci/oci_spec.h"
#include "runtime/sandboxers/wasm/wasm_engine.h"

namespace kuasar {

struct NamespaceJoin {
  std::string type;  // OCI name: network, ipc, uts (the ones the runner joins)
  std::string path;  // e.g. /proc/<sandbox pid>/ns/net
};

struct Rlimit {
  int resource = 0;  // RLIMIT_*
  uint64_t soft = 0, hard = 0;
};

// process.capabilities, by name (CAP_KILL, ...).
struct CapabilitySets {
  std::vector<std::string> bounding, effective, permitted, inheritable;
};

struct WasmContainerSpec {
  std::string rootfs;  // absolute host path
  bool rootfs_readonly = false;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  // Bind mounts, as candidate preopens (the runner keeps those whose source is a directory).
  std::vector<WasmPreopen> binds;
  std::vector<NamespaceJoin> namespaces;
  std::string cgroups_path;
  int64_t memory_limit = 0;  // linux.resources.memory.limit (0: none)
  int64_t cpu_quota_us = 0;  // linux.resources.cpu.quota (0: none)
  int64_t cpu_period_us = 0;
  int64_t cpu_time_limit_s = 0;  // RLIMIT_CPU soft limit, enforced by the engine
  std::vector<Rlimit> rlimits;   // the others the runner applies with setrlimit
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  bool no_new_privileges = false;
  std::optional<CapabilitySets> capabilities;  // absent: left as they are

  // The module's path inside the rootfs: args[0], made absolute against cwd.
  std::string ModulePath() const;
};

// `bundle`: the bundle directory (root.path is relative to it unless absolute).
absl::StatusOr<WasmContainerSpec> ParseWasmContainerSpec(const OciSpec& spec,
                                                         const std::string& bundle);

}  // namespace kuasar
