// ContainerEngine: the OCI runtime that runs a pod's containers (crun by default, runc by
// config). The runtime is driven through its command line, which crun and runc share.
// create/exec start long-lived processes, so they are launched by a ProcessSpawner (the
// pod's holder, which then reaps the containers); the other commands are short children
// of the sandboxer. Thread-safe: every call is an independent process.
#pragma once

#include <sys/types.h>

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/oci/oci_spec.h"

namespace kuasar {

// Runs a program whose orphans must be reaped by someone who reports their exits, and
// waits for that program's own exit.
class ProcessSpawner {
 public:
  virtual ~ProcessSpawner() = default;
  virtual absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv,
                                      std::array<int, 3> stdio) = 0;
  // The wait status of a pid this spawner started, within `timeout`.
  virtual absl::StatusOr<int> WaitExit(pid_t pid, absl::Duration timeout) = 0;
};

struct EngineCreateOptions {
  std::string id;
  std::string bundle;
  std::string console_socket;  // for terminal containers
  std::array<int, 3> stdio = {-1, -1, -1};
};

struct EngineExecOptions {
  std::string id;
  std::string exec_id;
  std::string bundle;          // where process-<exec_id>.json and the pid file go
  std::string process_json;    // OCI runtime-spec Process as JSON
  std::string console_socket;
  std::array<int, 3> stdio = {-1, -1, -1};
};

class ContainerEngine {
 public:
  virtual ~ContainerEngine() = default;
  virtual std::string_view Name() const = 0;
  // Adjusts a bundle's spec to what this runtime accepts; true if it changed anything.
  virtual bool AdaptSpec(OciSpec& spec) const { (void)spec; return false; }
  // Returns the container's init pid (created, not started).
  virtual absl::StatusOr<pid_t> Create(ProcessSpawner& spawner,
                                       const EngineCreateOptions& options) = 0;
  virtual absl::Status Start(std::string_view id) = 0;
  // Returns the exec'd process pid (running).
  virtual absl::StatusOr<pid_t> Exec(ProcessSpawner& spawner, const EngineExecOptions& options) = 0;
  virtual absl::Status Kill(std::string_view id, int signal, bool all) = 0;
  virtual absl::Status Delete(std::string_view id, bool force) = 0;
  virtual absl::Status Pause(std::string_view id) = 0;
  virtual absl::Status Resume(std::string_view id) = 0;
  virtual absl::Status Update(std::string_view id, std::string_view resources_json,
                              const std::string& scratch_dir) = 0;
  virtual absl::StatusOr<std::vector<pid_t>> Ps(std::string_view id) = 0;
};

struct OciCliEngineOptions {
  // "crun", "runc", a path, or "auto": crun unless this host is one crun cannot run on
  // (crun refuses cgroup "hybrid" hosts whose cgroup2 mount has controllers), then runc.
  std::string binary;
  std::string root;    // the runtime's state root (--root)
  bool systemd_cgroup = false;
  absl::Duration command_timeout = absl::Seconds(30);
  // Runs the short commands (start, kill, delete, ...) too when set: a process that
  // reaps every child (the guest agent as PID 1) must see them as its own spawns, or its
  // reaper would take their exits from under ChildProcess. Default: ChildProcess.
  ProcessSpawner* command_spawner = nullptr;
  // `create --no-pivot`: needed when / is the initial ramfs (a VM booted from an
  // initramfs), which pivot_root cannot move away from. runc's documented use of it.
  bool no_pivot = false;
  // Flags placed before every subcommand (runsc's --platform, --network, ...).
  std::vector<std::string> global_flags = {};
};

// `name` if it is a path to an executable, else its first match on PATH.
absl::StatusOr<std::string> ResolveOciRuntime(const std::string& name);

// Why crun cannot run containers on this host ("" if it can).
std::string CrunHostProblem();

// crun or runc through its CLI. Resolves `binary` on PATH at construction.
absl::StatusOr<std::unique_ptr<ContainerEngine>> MakeOciCliEngine(
    const OciCliEngineOptions& options);

}  // namespace kuasar
