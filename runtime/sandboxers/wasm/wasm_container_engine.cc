#include "runtime/sandboxers/wasm/wasm_container_engine.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/child_process.h"
#include "runtime/base/id_check.h"
#include "runtime/base/logging.h"
#include "runtime/base/process_identity.h"
#include "runtime/base/status_macros.h"
#include "runtime/oci/cgroup.h"
#include "runtime/sandboxers/wasm/runner_handshake.h"

namespace kuasar {
namespace {

struct ContainerState {
  ProcessIdentity runner;
  std::string cgroups_path;
};

class WasmContainerEngine final : public ContainerEngine {
 public:
  explicit WasmContainerEngine(WasmContainerEngineOptions o) : o_(std::move(o)) {}

  std::string_view Name() const override { return "wasm"; }

  absl::StatusOr<pid_t> Create(ProcessSpawner& spawner, const EngineCreateOptions& c) override {
    if (!c.console_socket.empty()) {
      return absl::UnimplementedError("wasm containers have no terminal (tty: false only)");
    }
    ASSIGN_OR_RETURN(std::string dir, StateDir(c.id));
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    RETURN_IF_ERROR(EnsurePrivateDirectory(dir));
    ASSIGN_OR_RETURN(OciSpec spec, OciSpec::Load(c.bundle + "/config.json"));
    ASSIGN_OR_RETURN(UniqueFd ready_fd, PrepareHandshake(dir));
    std::vector<std::string> argv = {o_.runner,
                                     "--bundle",
                                     c.bundle,
                                     "--state-dir",
                                     dir,
                                     "--engine",
                                     o_.engine.kind,
                                     "--library",
                                     o_.engine.library,
                                     "--default-memory-limit",
                                     std::to_string(o_.default_memory_limit),
                                     "--default-cpu-quota-us",
                                     std::to_string(o_.default_cpu_quota_us),
                                     "--cpu-period-us",
                                     std::to_string(o_.cpu_period_us),
                                     "--cgroup-memory-overhead",
                                     std::to_string(o_.cgroup_memory_overhead)};
    ASSIGN_OR_RETURN(pid_t pid, spawner.Spawn(argv, c.stdio));
    auto ident = IdentifyProcess(pid);
    ContainerState state{ident.ok() ? *ident : ProcessIdentity{pid, 0}, spec.cgroups_path()};
    if (absl::Status saved = SaveState(dir, state); !saved.ok()) {
      (void)Signal(state.runner, SIGKILL);
      (void)spawner.WaitExit(pid, absl::Seconds(2));
      return saved;
    }
    absl::Status ready = AwaitRunnerReady(ready_fd.get(), o_.ready_timeout,
                                          [&] { return IsSameProcessAlive(state.runner); });
    if (!ready.ok()) {
      // Claim its exit (nobody else watches this pid) and say how it ended.
      if (!IsSameProcessAlive(state.runner)) {
        if (auto status = spawner.WaitExit(pid, absl::Seconds(2));
            status.ok() && absl::IsInternal(ready)) {
          ready =
              Annotate(ready, absl::StrFormat("exit status %d", ExitCodeFromWaitStatus(*status)));
        }
      } else {
        (void)Signal(state.runner, SIGKILL);
        (void)spawner.WaitExit(pid, absl::Seconds(2));
      }
      return ready;
    }
    return pid;
  }

  absl::Status Start(std::string_view id) override {
    ASSIGN_OR_RETURN(std::string dir, StateDir(id));
    return Annotate(SignalRunnerStart(dir), absl::StrFormat("container %s", id));
  }

  absl::StatusOr<pid_t> Exec(ProcessSpawner&, const EngineExecOptions& e) override {
    return absl::UnimplementedError(absl::StrFormat(
        "exec into wasm container %s is not supported: a WASI module runs alone", e.id));
  }

  absl::Status Kill(std::string_view id, int signal, bool) override {
    ASSIGN_OR_RETURN(ContainerState st, LoadState(id));
    if (!IsSameProcessAlive(st.runner)) {
      return absl::NotFoundError(absl::StrFormat("container %s is not running", id));
    }
    return Signal(st.runner, signal);
  }

  absl::Status Delete(std::string_view id, bool force) override {
    ASSIGN_OR_RETURN(std::string dir, StateDir(id));
    absl::StatusOr<ContainerState> st = LoadState(id);
    if (st.ok()) {
      if (IsSameProcessAlive(st->runner)) {
        if (!force) {
          return absl::FailedPreconditionError(absl::StrFormat("container %s is running", id));
        }
        (void)Signal(st->runner, SIGKILL);
        (void)Signal(st->runner, SIGCONT);  // a paused runner dies at once too
        absl::Time deadline = absl::Now() + absl::Seconds(2);
        while (IsSameProcessAlive(st->runner) && absl::Now() < deadline) ::usleep(2000);
      }
      if (!st->cgroups_path.empty()) {
        if (absl::Status rs = RemoveCgroup(st->cgroups_path); !rs.ok() && !absl::IsNotFound(rs)) {
          spdlog::warn("container={} op=remove-cgroup error=\"{}\"", id, rs.message());
        }
      }
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return absl::OkStatus();
  }

  absl::Status Pause(std::string_view id) override { return Kill(id, SIGSTOP, false); }
  absl::Status Resume(std::string_view id) override { return Kill(id, SIGCONT, false); }

  absl::Status Update(std::string_view id, std::string_view, const std::string&) override {
    return absl::UnimplementedError(absl::StrFormat(
        "updating the resources of running wasm container %s is not supported: the module's "
        "limits are fixed when it starts",
        id));
  }

  absl::StatusOr<std::vector<pid_t>> Ps(std::string_view id) override {
    ASSIGN_OR_RETURN(ContainerState st, LoadState(id));
    if (!IsSameProcessAlive(st.runner)) return std::vector<pid_t>{};
    return std::vector<pid_t>{st.runner.pid};
  }

 private:
  absl::StatusOr<std::string> StateDir(std::string_view id) const {
    return PathUnder(o_.root, id, "container id");
  }

  static absl::Status SaveState(const std::string& dir, const ContainerState& s) {
    nlohmann::json j = {{"pid", s.runner.pid},
                        {"start_time", s.runner.start_time},
                        {"cgroups_path", s.cgroups_path}};
    return WriteFileAtomically(dir + "/state.json", j.dump(), 0600);
  }

  absl::StatusOr<ContainerState> LoadState(std::string_view id) const {
    ASSIGN_OR_RETURN(std::string dir, StateDir(id));
    auto text = ReadSmallFile(dir + "/state.json", 1 << 16);
    if (!text.ok()) {
      return absl::NotFoundError(absl::StrFormat("container %s does not exist", id));
    }
    nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
    if (!j.is_object()) return absl::DataLossError(absl::StrFormat("bad %s/state.json", dir));
    return ContainerState{{j.value("pid", 0), j.value("start_time", uint64_t{0})},
                          j.value("cgroups_path", "")};
  }

  static absl::Status Signal(const ProcessIdentity& p, int signal) {
    ASSIGN_OR_RETURN(UniqueFd fd, OpenPidfd(p));
    if (::syscall(SYS_pidfd_send_signal, fd.get(), signal, nullptr, 0) != 0) {
      return ErrnoStatus(errno, "kill", absl::StrFormat("pid %d", p.pid));
    }
    return absl::OkStatus();
  }

  WasmContainerEngineOptions o_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ContainerEngine>> MakeWasmContainerEngine(
    WasmContainerEngineOptions options) {
  if (::access(options.runner.c_str(), X_OK) != 0) {
    return absl::NotFoundError(
        absl::StrFormat("kuasar-wasm-run not found at %s (set [wasm] runner)", options.runner));
  }
  if (options.root.empty() || options.root[0] != '/') {
    return absl::InvalidArgumentError("the wasm runtime root must be an absolute path");
  }
  std::error_code ec;
  std::filesystem::create_directories(options.root, ec);
  RETURN_IF_ERROR(EnsurePrivateDirectory(options.root));
  return std::unique_ptr<ContainerEngine>(new WasmContainerEngine(std::move(options)));
}

}  // namespace kuasar
