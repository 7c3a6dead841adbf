#include "runtime/sandboxers/vmm/rest/rest_vmm_hypervisor.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/logging.h"
#include "runtime/base/socket_path.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/common/virtiofs_daemon.h"
#include "runtime/sandboxers/vmm/rest/hybrid_vsock.h"

namespace kuasar::vmm {

// What the exit watch (io thread) shares with the driver's blocking calls; a callback
// running late never touches a destroyed driver.
struct RestVmmHypervisor::Shared {
  std::mutex mu;
  std::string sandbox_id;
  std::string driver;
  ExitCallback exit_callback;
  bool exited = false;
  bool stop_requested = false;
  std::string exit_reason;
};

namespace {

using nlohmann::json;

std::string TailLines(const std::string& path, size_t n) {
  auto text = ReadSmallFile(path, 4 << 20);
  if (!text.ok()) return "(none)";
  std::vector<std::string> lines = absl::StrSplit(*text, '\n', absl::SkipWhitespace());
  if (lines.empty()) return "(empty)";
  size_t from = lines.size() > n ? lines.size() - n : 0;
  std::vector<std::string> tail(lines.begin() + static_cast<std::ptrdiff_t>(from), lines.end());
  for (std::string& l : tail) {
    if (l.size() > 200) l.resize(200);
  }
  return absl::StrJoin(tail, " | ");
}

json IdentityJson(const ProcessIdentity& id) {
  return {{"pid", id.pid}, {"start_time", id.start_time}};
}

absl::StatusOr<ProcessIdentity> IdentityFrom(const json& j, std::string_view what) {
  if (!j.is_object() || !j.contains("pid") || !j.contains("start_time") ||
      !j["pid"].is_number_integer() || !j["start_time"].is_number_unsigned()) {
    return absl::DataLossError(absl::StrFormat("VMM state: bad %s identity", what));
  }
  return ProcessIdentity{j["pid"].get<pid_t>(), j["start_time"].get<uint64_t>()};
}

}  // namespace

std::string DescribeWaitStatus(int wait_status) {
  if (wait_status < 0) return "the VMM exited";
  if (WIFSIGNALED(wait_status)) {
    return absl::StrFormat("killed by signal %d", WTERMSIG(wait_status));
  }
  return absl::StrFormat("exited with status %d", WEXITSTATUS(wait_status));
}

RestVmmPaths RestVmmPaths::For(const VmConfig& vm, std::string_view driver) {
  RestVmmPaths p;
  p.api_socket = vm.socket_dir + "/api.sock";
  p.vsock_socket = vm.socket_dir + "/vsock.sock";
  p.virtiofs_socket = vm.socket_dir + "/virtiofs.sock";
  p.console_log = vm.state_dir + "/console.log";
  p.vmm_log = absl::StrFormat("%s/%s.log", vm.state_dir, driver);
  p.virtiofsd_log = vm.state_dir + "/virtiofsd.log";
  return p;
}

RestVmmHypervisor::RestVmmHypervisor(RestVmmOptions options, boost::asio::io_context& io)
    : options_(std::move(options)), io_(io), shared_(std::make_shared<Shared>()) {
  shared_->driver = options_.driver;
}

RestVmmHypervisor::~RestVmmHypervisor() {
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->exit_callback = nullptr;
  // The VmmProcess handles detach: a running VM survives for Recover.
}

VmmProcess* RestVmmHypervisor::vmm_process() const {
  std::lock_guard<std::mutex> lock(mu_);
  return vmm_.get();
}

absl::Status RestVmmHypervisor::Prepare(const VmConfig& vm) {
  if (vm.sandbox_id.empty() || vm.state_dir.empty() || vm.socket_dir.empty()) {
    return absl::InvalidArgumentError("VM config needs sandbox_id, state_dir and socket_dir");
  }
  struct stat st {};
  if (::stat(vm.state_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrFormat("state dir %s missing", vm.state_dir));
  }
  // The fake VMM puts its guest ports in <socket_dir>/fakevm-<pid>/vsock-<port>.sock.
  RETURN_IF_ERROR(CheckSocketDirFits(vm.socket_dir, sizeof("fakevm-4194304/vsock-65535.sock")));
  if (vm.vcpus < 1 || vm.memory_mib < 64) {
    return absl::InvalidArgumentError(
        absl::StrFormat("VM %s: needs at least 1 vCPU and 64 MiB (got %d, %d MiB)", vm.sandbox_id,
                        vm.vcpus, vm.memory_mib));
  }
  for (const std::string& f : {vm.kernel_path, vm.initrd_path}) {
    if (f.empty()) return absl::InvalidArgumentError("the VM needs a kernel and an initrd");
    if (::access(f.c_str(), R_OK) != 0) {
      return Annotate(ErrnoStatus(errno, "access", f), "guest image (build kuasar-guest-image)");
    }
  }
  if (vm.shared_dir) {
    if (options_.virtiofsd_path.empty()) {
      return absl::FailedPreconditionError(
          absl::StrFormat("%s: shared directories need virtio-fs, and no virtiofsd is configured",
                          options_.driver));
    }
    if (::stat(vm.shared_dir->host_path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrFormat("shared dir %s is not a directory", vm.shared_dir->host_path));
    }
  }
  paths_ = RestVmmPaths::For(vm, options_.driver);
  vm_ = vm;
  ASSIGN_OR_RETURN(argv_, BuildArgv(vm));
  rest_ = std::make_unique<RestClient>(paths_.api_socket, options_.api_timeout);
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->sandbox_id = vm.sandbox_id;
  return absl::OkStatus();
}

absl::Status RestVmmHypervisor::Launch() {
  if (argv_.empty()) return absl::FailedPreconditionError("Launch before Prepare");
  if (Identity()) return absl::FailedPreconditionError("already launched");
  absl::Time start = absl::Now();
  absl::Time deadline = start + options_.launch_timeout;
  for (const std::string& s : {paths_.api_socket, paths_.vsock_socket, paths_.virtiofs_socket}) {
    RETURN_IF_ERROR(PrepareSocketPath(s));
  }
  std::unique_ptr<VmmProcess> virtiofsd;
  if (vm_.shared_dir) {
    VirtiofsdOptions o;
    o.daemon_path = options_.virtiofsd_path;
    ASSIGN_OR_RETURN(o.rust, DetectVirtiofsdFlavor(options_.virtiofsd_path));
    o.socket_path = paths_.virtiofs_socket;
    o.shared_dir = vm_.shared_dir->host_path;
    o.read_only = vm_.shared_dir->read_only;
    o.cache = options_.virtiofs_cache;
    o.extra_args = options_.virtiofsd_extra_args;
    o.log_path = paths_.virtiofsd_log;
    ASSIGN_OR_RETURN(virtiofsd, StartVirtiofsd(io_, o, deadline));
  }
  auto vmm = VmmProcess::Spawn(
      io_, {argv_, paths_.vmm_log, vm_.netns_path, options_.capabilities});
  if (!vmm.ok()) {
    if (virtiofsd) (void)virtiofsd->Kill();
    return Annotate(vmm.status(),
                    absl::StrFormat("sandbox %s: start %s", vm_.sandbox_id, options_.driver));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    vmm_ = std::move(*vmm);
    virtiofsd_ = std::move(virtiofsd);
  }
  WatchExit();
  absl::Status st =
      rest_->WaitUntilAnswering(options_.ping_target, deadline, [this] { return KeepTrying(); });
  if (st.ok()) st = ConfigureAndBoot();
  if (!st.ok()) {
    if (auto early = vmm_process()->WaitFor(absl::Milliseconds(100)); early.ok()) {
      st = absl::FailedPreconditionError(absl::StrFormat("%s %s while starting", options_.driver,
                                                         DescribeWaitStatus(early->wait_status)));
    }
    (void)Kill();
    return absl::Status(
        st.code(), absl::StrFormat("sandbox %s: launch %s: %s; %s", vm_.sandbox_id, options_.driver,
                                   st.message(), DiagnosticTail()));
  }
  spdlog::info("sandbox={} op=launch vmm={} pid={} ms={}", vm_.sandbox_id, options_.driver,
               Identity()->pid, absl::ToInt64Milliseconds(absl::Now() - start));
  return absl::OkStatus();
}

absl::Status RestVmmHypervisor::KeepTrying() const {
  VmmProcess* vmm = vmm_process();
  if (vmm == nullptr) return absl::FailedPreconditionError("the VM is not running");
  if (auto exit = vmm->exit()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s %s", options_.driver, DescribeWaitStatus(exit->wait_status)));
  }
  return absl::OkStatus();
}

void RestVmmHypervisor::WatchExit() {
  vmm_process()->OnExit([shared = shared_](const VmmProcess::Exit& e) {
    VmExit exit;
    exit.wait_status = e.wait_status;
    exit.at = e.at;
    ExitCallback callback;
    std::string id, driver;
    {
      std::lock_guard<std::mutex> lock(shared->mu);
      shared->exited = true;
      exit.requested = shared->stop_requested;
      // CH and FC exit 0 once the guest powered off, non-zero when it crashed.
      bool clean =
          e.wait_status >= 0 && WIFEXITED(e.wait_status) && WEXITSTATUS(e.wait_status) == 0;
      exit.reason = clean ? "guest-shutdown" : DescribeWaitStatus(e.wait_status);
      shared->exit_reason = exit.reason;
      callback = shared->exit_callback;
      id = shared->sandbox_id, driver = shared->driver;
    }
    spdlog::info("sandbox={} op=vmm_exit vmm={} status={} reason=\"{}\" requested={}", id, driver,
                 exit.ExitStatus(), exit.reason, exit.requested);
    if (callback) callback(exit);
  });
}

absl::StatusOr<AgentChannel> RestVmmHypervisor::WaitReady(absl::Time deadline) {
  if (vmm_process() == nullptr) return absl::FailedPreconditionError("WaitReady before Launch");
  auto fd = DialHybridVsock(paths_.vsock_socket, options_.vsock_port, deadline,
                            [this] { return KeepTrying(); });
  if (!fd.ok()) {
    return absl::Status(fd.status().code(),
                        absl::StrFormat("sandbox %s: the guest agent did not come up: %s; %s",
                                        vm_.sandbox_id, fd.status().message(), DiagnosticTail()));
  }
  return agent_channel();  // the probe connection closes here; the agent accepts more
}

AgentChannel RestVmmHypervisor::agent_channel() const {
  AgentChannel c;
  c.kind = AgentChannel::Kind::kHybridVsock;
  c.path = paths_.vsock_socket;
  c.port = options_.vsock_port;
  return c;
}

absl::Status RestVmmHypervisor::Stop(absl::Duration timeout) {
  VmmProcess* vmm = vmm_process();
  if (vmm == nullptr) return absl::OkStatus();
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stop_requested = true;
  }
  absl::Time start = absl::Now();
  if (!vmm->exit()) {
    absl::Status pressed = RequestPowerOff();
    if (pressed.ok()) {
      (void)vmm->WaitFor(std::max(start + timeout - absl::Now(), absl::ZeroDuration()));
    } else {
      spdlog::warn("sandbox={} op=stop vmm={} poweroff=\"{}\"", vm_.sandbox_id, options_.driver,
                   pressed.message());
    }
    if (!vmm->exit()) {
      spdlog::warn("sandbox={} op=stop vmm={} reason=\"no power-off within {}\" action=quit",
                   vm_.sandbox_id, options_.driver, absl::FormatDuration(timeout));
      RequestQuit();
      if (!vmm->WaitFor(absl::Seconds(3)).ok()) (void)vmm->Signal(SIGKILL);
    }
  }
  RETURN_IF_ERROR(FinishAfterExit(absl::Seconds(10)));
  spdlog::info("sandbox={} op=stop vmm={} ms={}", vm_.sandbox_id, options_.driver,
               absl::ToInt64Milliseconds(absl::Now() - start));
  return absl::OkStatus();
}

absl::Status RestVmmHypervisor::Kill() {
  VmmProcess* vmm = vmm_process();
  if (vmm == nullptr) return absl::OkStatus();
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stop_requested = true;
  }
  (void)vmm->Signal(SIGKILL);
  return FinishAfterExit(absl::Seconds(10));
}

absl::Status RestVmmHypervisor::FinishAfterExit(absl::Duration wait) {
  VmmProcess *vmm, *virtiofsd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    vmm = vmm_.get();
    virtiofsd = virtiofsd_.get();
  }
  auto exit = vmm->WaitFor(wait);
  if (!exit.ok()) {
    return absl::InternalError(absl::StrFormat("sandbox %s: %s pid %d did not exit: %s",
                                               vm_.sandbox_id, options_.driver, vmm->identity().pid,
                                               exit.status().message()));
  }
  // virtiofsd leaves when the VMM disconnects; make sure of it.
  if (virtiofsd && !virtiofsd->WaitFor(absl::Seconds(2)).ok()) RETURN_IF_ERROR(virtiofsd->Kill());
  for (const std::string& f : {paths_.api_socket, paths_.vsock_socket, paths_.virtiofs_socket}) {
    (void)::unlink(f.c_str());
  }
  return absl::OkStatus();
}

std::optional<ProcessIdentity> RestVmmHypervisor::Identity() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!vmm_) return std::nullopt;
  return vmm_->identity();
}

void RestVmmHypervisor::SetExitCallback(ExitCallback callback) {
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->exit_callback = std::move(callback);
}

json RestVmmHypervisor::PersistedState() const {
  std::lock_guard<std::mutex> lock(mu_);
  json j = {{"driver", options_.driver},
            {"sandbox_id", vm_.sandbox_id},
            {"state_dir", vm_.state_dir},
            {"socket_dir", vm_.socket_dir},
            {"vsock_port", options_.vsock_port}};
  if (vmm_) j["vmm"] = IdentityJson(vmm_->identity());
  if (virtiofsd_) j["virtiofsd"] = IdentityJson(virtiofsd_->identity());
  return j;
}

absl::Status RestVmmHypervisor::Recover(const json& state) {
  if (!state.is_object() || state.value("driver", "") != options_.driver) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: Recover needs the state PersistedState() gave", options_.driver));
  }
  if (Identity()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: Recover on a running instance", options_.driver));
  }
  if (state.value("vsock_port", options_.vsock_port) != options_.vsock_port) {
    return absl::FailedPreconditionError("vsock_port changed since the VM was started");
  }
  vm_.sandbox_id = state.value("sandbox_id", "");
  vm_.state_dir = state.value("state_dir", "");
  vm_.socket_dir = state.value("socket_dir", "");
  if (vm_.sandbox_id.empty() || vm_.state_dir.empty() || vm_.socket_dir.empty()) {
    return absl::DataLossError("VMM state: sandbox_id, state_dir or socket_dir missing");
  }
  paths_ = RestVmmPaths::For(vm_, options_.driver);
  rest_ = std::make_unique<RestClient>(paths_.api_socket, options_.api_timeout);
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->sandbox_id = vm_.sandbox_id;
  }
  ASSIGN_OR_RETURN(ProcessIdentity vmm_id, IdentityFrom(state.value("vmm", json()), "vmm"));
  ASSIGN_OR_RETURN(std::unique_ptr<VmmProcess> vmm, VmmProcess::Attach(io_, vmm_id));
  std::unique_ptr<VmmProcess> virtiofsd;
  if (state.contains("virtiofsd")) {
    ASSIGN_OR_RETURN(ProcessIdentity id, IdentityFrom(state["virtiofsd"], "virtiofsd"));
    auto attached = VmmProcess::Attach(io_, id);
    if (attached.ok()) {
      virtiofsd = std::move(*attached);
    } else {
      spdlog::warn("sandbox={} op=recover virtiofsd=gone reason=\"{}\"", vm_.sandbox_id,
                   attached.status().message());
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    vmm_ = std::move(vmm);
    virtiofsd_ = std::move(virtiofsd);
  }
  WatchExit();
  absl::Status st = rest_->WaitUntilAnswering(options_.ping_target, absl::Now() + absl::Seconds(5),
                                              [this] { return KeepTrying(); });
  if (st.ok()) st = CheckRecovered();
  if (!st.ok()) {
    return absl::UnavailableError(
        absl::StrFormat("sandbox %s: %s pid %d is alive but its API does not answer: %s",
                        vm_.sandbox_id, options_.driver, vmm_id.pid, st.message()));
  }
  spdlog::info("sandbox={} op=recover vmm={} pid={}", vm_.sandbox_id, options_.driver, vmm_id.pid);
  return absl::OkStatus();
}

void RestVmmHypervisor::Describe(std::map<std::string, std::string>* info) const {
  (*info)["vmm"] = options_.driver;
  (*info)["console_log"] = paths_.console_log;
  (*info)["vmm_log"] = paths_.vmm_log;
  (*info)["api_socket"] = paths_.api_socket;
  (*info)["agent_address"] = agent_channel().TaskAddress();
  if (auto id = Identity()) (*info)["vmm_pid"] = absl::StrFormat("%d", id->pid);
}

std::string RestVmmHypervisor::DiagnosticTail() const {
  return absl::StrFormat("console.log (%s) ends: %s; %s ends: %s", paths_.console_log,
                         TailLines(paths_.console_log, 6), paths_.vmm_log,
                         TailLines(paths_.vmm_log, 3));
}

}  // namespace kuasar::vmm
