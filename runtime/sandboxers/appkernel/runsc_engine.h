// RunscEngine: app containers under gVisor's runsc, every container of a pod inside that
// pod's one Sentry. runsc speaks runc's CLI, so the commands go through the shared
// OciCliEngine; what differs is wrapped here:
//  - the pod's sandbox container (a pause process) is created at pod start and deleted at
//    pod stop (CreatePodSandbox / DeletePodSandbox);
//  - an app container joining it has no host process of its own (runsc's pid file names
//    the Sentry), so Create spawns, through the pod's holder, a kuasar-appkernel-wait that
//    blocks on a FIFO until Start, then runs `runsc wait` and exits with the container's
//    exit code: that waiter is the pid the task service watches;
//  - runsc hands a joining container the stdio of `runsc start`, not `create`, so Create
//    keeps dups of containerd's stdio fds until Start.
// Thread-safe: per-container state under one mutex, never held across a child process.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/base/unique_fd.h"
#include "runtime/oci/container_engine.h"

namespace kuasar {

struct RunscEngineOptions {
  std::string binary;                     // runsc: name on PATH or a path
  std::string root;                       // --root
  std::vector<std::string> global_flags;  // --platform=..., --network=..., ...
  std::string waiter;                     // kuasar-appkernel-wait
  absl::Duration command_timeout = absl::Seconds(30);
};

class RunscEngine final : public ContainerEngine {
 public:
  static absl::StatusOr<std::unique_ptr<RunscEngine>> Make(const RunscEngineOptions& options);

  std::string_view Name() const override { return "runsc"; }
  absl::StatusOr<pid_t> Create(ProcessSpawner& spawner, const EngineCreateOptions& o) override;
  absl::Status Start(std::string_view id) override;
  absl::StatusOr<pid_t> Exec(ProcessSpawner& spawner, const EngineExecOptions& o) override {
    return cli_->Exec(spawner, o);  // `runsc exec --detach`'s pid is a waiter already
  }
  absl::Status Kill(std::string_view id, int signal, bool all) override {
    return cli_->Kill(id, signal, all);
  }
  absl::Status Delete(std::string_view id, bool force) override;
  absl::Status Pause(std::string_view id) override { return cli_->Pause(id); }
  absl::Status Resume(std::string_view id) override { return cli_->Resume(id); }
  absl::Status Update(std::string_view id, std::string_view resources_json,
                      const std::string& scratch_dir) override {
    return cli_->Update(id, resources_json, scratch_dir);
  }
  absl::StatusOr<std::vector<pid_t>> Ps(std::string_view id) override { return cli_->Ps(id); }

  // The pod's Sentry: `runsc create` + `start` of `bundle` (a PodSandboxSpec) as container
  // `sandbox_id`, its processes children of `spawner` (the holder). Returns the Sentry pid.
  absl::StatusOr<pid_t> CreatePodSandbox(ProcessSpawner& spawner, const std::string& sandbox_id,
                                         const std::string& bundle);
  // Kills and deletes the pod's Sentry and everything in it; idempotent.
  absl::Status DeletePodSandbox(const std::string& sandbox_id);

 private:
  struct Joined {
    UniqueFd start_fifo;            // write end, kept open so the signal never races the waiter
    std::array<UniqueFd, 3> stdio;  // containerd's FIFOs, for `runsc start`
  };
  RunscEngine(RunscEngineOptions options, std::string binary,
              std::unique_ptr<ContainerEngine> cli);
  std::string FifoPath(std::string_view id) const;
  // Tells the waiter of `id` to go on: 'S' (started: wait for the exit) or 'X' (abandon).
  void Signal(std::string_view id, UniqueFd fifo, char what);
  absl::Status StartWithStdio(std::string_view id, const std::array<UniqueFd, 3>& stdio);

  RunscEngineOptions options_;
  std::string binary_;
  std::unique_ptr<ContainerEngine> cli_;
  std::mutex mu_;
  std::map<std::string, Joined, std::less<>> joined_;
};

}  // namespace kuasar
