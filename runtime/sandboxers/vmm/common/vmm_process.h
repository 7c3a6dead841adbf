// VmmProcess: one process a VMM driver owns (the VMM itself, or a helper such as
// virtiofsd): spawned here (a ChildProcess reaped here, its wait status known) or
// reattached after a sandboxer restart (a pidfd; its status is then unknown). Its exit
// is watched through the pidfd on the io_context, so no thread waits per VM.
// Thread-safe; WaitFor blocks and must not run on the io thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/base/process_identity.h"
#include "runtime/sandboxers/vmm/common/vmm_capabilities.h"

namespace boost::asio {
class io_context;
}

namespace kuasar::vmm {

struct VmmSpawnParams {
  std::vector<std::string> argv;
  // stdout and stderr are appended here ("" discards them).
  std::string log_path;
  // Spawn inside this network namespace (see vmm_process.cc: a short-lived thread
  // setns()es itself and spawns, so neither the daemon nor a helper binary moves).
  std::string netns_path;
  // What it may keep of root's capabilities (VMMs: the driver's vmm_capabilities; helpers
  // such as virtiofsd, which sandbox themselves, keep all).
  VmmCapabilities capabilities = VmmCapabilities{.keep_all = true, .keep = {}};
};

class VmmProcess {
 public:
  struct Exit {
    int wait_status = -1;  // -1 when the process was not our child
    absl::Time at;
  };
  using ExitCallback = std::function<void(const Exit&)>;

  static absl::StatusOr<std::unique_ptr<VmmProcess>> Spawn(boost::asio::io_context& io,
                                                           const VmmSpawnParams& params);
  // NOT_FOUND if `id` is gone or its pid now names another process. A child this process
  // spawned and detached is adopted back, so its wait status stays known.
  static absl::StatusOr<std::unique_ptr<VmmProcess>> Attach(boost::asio::io_context& io,
                                                            const ProcessIdentity& id);
  // Detaches: a process still running is left running (the daemon may restart and
  // reattach, or Attach it again); it is never killed here.
  ~VmmProcess();
  VmmProcess(const VmmProcess&) = delete;
  VmmProcess& operator=(const VmmProcess&) = delete;

  const ProcessIdentity& identity() const { return identity_; }
  bool is_child() const;
  // `callback` runs once on the io thread when the process exits (posted at once if it
  // already has). Set it once.
  void OnExit(ExitCallback callback);
  std::optional<Exit> exit() const;
  absl::Status Signal(int sig);
  // Waits up to `timeout`; DEADLINE_EXCEEDED if still running. Needs the io_context
  // running (the exit is observed there).
  absl::StatusOr<Exit> WaitFor(absl::Duration timeout);
  // SIGKILL, then WaitFor(`wait`). OK if it had already exited.
  absl::Status Kill(absl::Duration wait = absl::Seconds(10));

 private:
  struct State;
  VmmProcess(std::shared_ptr<State> state, ProcessIdentity identity);
  void Watch();

  std::shared_ptr<State> state_;
  ProcessIdentity identity_;
};

}  // namespace kuasar::vmm
