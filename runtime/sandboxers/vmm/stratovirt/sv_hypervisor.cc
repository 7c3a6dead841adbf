#include "runtime/sandboxers/vmm/stratovirt/sv_hypervisor.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>

#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "runtime/base/socket_path.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/common/qmp_replies.h"
#include "runtime/sandboxers/vmm/rest/rest_vmm_hypervisor.h"

namespace kuasar::vmm {

using nlohmann::json;

struct SvHypervisor::Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::string sandbox_id;
  ExitCallback exit_callback;
  bool exited = false;
  bool stop_requested = false;
  std::string shutdown_reason;  // the SHUTDOWN event's reason
};

SvHypervisor::SvHypervisor(const SvConfig& config, boost::asio::io_context& io)
    : config_(config), io_(io), shared_(std::make_shared<Shared>()) {}

SvHypervisor::~SvHypervisor() {
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->exit_callback = nullptr;
  }
  std::lock_guard<std::mutex> lock(mu_);
  qmp_.reset();  // the VmmProcess detaches: a running VM survives for Recover
}

VmmProcess* SvHypervisor::process() const {
  std::lock_guard<std::mutex> lock(mu_);
  return vmm_.get();
}

absl::Status SvHypervisor::Prepare(const VmConfig& vm) {
  if (vm.sandbox_id.empty() || vm.state_dir.empty() || vm.socket_dir.empty()) {
    return absl::InvalidArgumentError("VM config needs sandbox_id, state_dir and socket_dir");
  }
  struct stat st {};
  if (::stat(vm.state_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrFormat("state dir %s missing", vm.state_dir));
  }
  RETURN_IF_ERROR(CheckSocketDirFits(vm.socket_dir, sizeof("agent.sock") - 1));
  for (const std::string& f : {vm.kernel_path, vm.initrd_path}) {
    if (::access(f.c_str(), R_OK) != 0) {
      return Annotate(ErrnoStatus(errno, "access", f), "guest image (build kuasar-guest-image)");
    }
  }
  SvPaths paths = SvPaths::For(vm);
  ASSIGN_OR_RETURN(argv_, BuildSvArgv(config_, vm, paths));
  vm_ = vm;
  paths_ = paths;
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->sandbox_id = vm.sandbox_id;
  return absl::OkStatus();
}

absl::Status SvHypervisor::Launch() {
  if (argv_.empty()) return absl::FailedPreconditionError("Launch before Prepare");
  if (Identity()) return absl::FailedPreconditionError("already launched");
  absl::Time start = absl::Now();
  // StratoVirt refuses an existing QMP socket file (its README: remove it first).
  for (const std::string& s : {paths_.qmp_socket, paths_.agent_socket}) {
    RETURN_IF_ERROR(PrepareSocketPath(s));
  }
  auto vmm = VmmProcess::Spawn(
      io_, {argv_, paths_.vmm_log, vm_.netns_path, config_.capabilities});
  if (!vmm.ok()) {
    return Annotate(vmm.status(), absl::StrFormat("sandbox %s: start stratovirt", vm_.sandbox_id));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    vmm_ = std::move(*vmm);
  }
  WatchExit();
  absl::Status st = ConnectQmp(start + absl::Seconds(30));
  if (st.ok()) st = RunState().status();
  if (!st.ok()) {
    if (auto early = process()->WaitFor(absl::Milliseconds(100)); early.ok()) {
      st = absl::FailedPreconditionError(
          absl::StrFormat("stratovirt %s while starting", DescribeWaitStatus(early->wait_status)));
    }
    (void)Kill();
    return absl::Status(st.code(), absl::StrFormat("sandbox %s: launch stratovirt: %s",
                                                   vm_.sandbox_id, st.message()));
  }
  spdlog::info("sandbox={} op=launch vmm=stratovirt pid={} ms={}", vm_.sandbox_id, Identity()->pid,
               absl::ToInt64Milliseconds(absl::Now() - start));
  return absl::OkStatus();
}

absl::Status SvHypervisor::ConnectQmp(absl::Time deadline) {
  QmpClientOptions o;
  o.io_context = &io_;
  o.on_event = [shared = shared_](const QmpEvent& e) {
    QmpEventEffect effect = InterpretQmpEvent(e, /*agent_port_id=*/"");
    if (!effect.shutdown_reason) return;
    {
      std::lock_guard<std::mutex> lock(shared->mu);
      shared->shutdown_reason = *effect.shutdown_reason;
    }
    shared->cv.notify_all();
  };
  VmmProcess* vmm = process();
  o.keep_trying = [vmm]() -> absl::Status {
    if (auto exit = vmm->exit()) {
      return absl::FailedPreconditionError(
          absl::StrFormat("stratovirt %s while starting", DescribeWaitStatus(exit->wait_status)));
    }
    return absl::OkStatus();
  };
  ASSIGN_OR_RETURN(std::unique_ptr<QmpClient> client,
                   QmpClient::Connect(paths_.qmp_socket, deadline, std::move(o)));
  std::lock_guard<std::mutex> lock(mu_);
  qmp_ = std::move(client);
  return absl::OkStatus();
}

void SvHypervisor::WatchExit() {
  process()->OnExit([shared = shared_](const VmmProcess::Exit& e) {
    VmExit exit;
    exit.wait_status = e.wait_status;
    exit.at = e.at;
    ExitCallback callback;
    std::string id;
    {
      std::lock_guard<std::mutex> lock(shared->mu);
      shared->exited = true;
      exit.requested = shared->stop_requested;
      exit.reason = shared->shutdown_reason.empty() ? DescribeWaitStatus(e.wait_status)
                                                    : shared->shutdown_reason;
      callback = shared->exit_callback;
      id = shared->sandbox_id;
    }
    shared->cv.notify_all();
    spdlog::info("sandbox={} op=vmm_exit vmm=stratovirt status={} reason={} requested={}", id,
                 exit.ExitStatus(), exit.reason, exit.requested);
    if (callback) callback(exit);
  });
}

absl::StatusOr<json> SvHypervisor::Qmp(std::string_view command, absl::Duration timeout) {
  std::shared_ptr<QmpClient> qmp;
  {
    std::lock_guard<std::mutex> lock(mu_);
    qmp = qmp_;
  }
  if (!qmp) return absl::FailedPreconditionError("the VM is not running");
  return qmp->Execute(command, nullptr, timeout);
}

absl::StatusOr<std::string> SvHypervisor::RunState() {
  ASSIGN_OR_RETURN(json status, Qmp("query-status"));
  return QmpRunStatus(status);
}

absl::StatusOr<AgentChannel> SvHypervisor::WaitReady(absl::Time deadline) {
  VmmProcess* vmm = process();
  if (vmm == nullptr) return absl::FailedPreconditionError("WaitReady before Launch");
  absl::Status last;
  while (absl::Now() < deadline) {
    if (auto exit = vmm->exit()) {
      return absl::FailedPreconditionError(
          absl::StrFormat("sandbox %s: stratovirt %s while the guest booted", vm_.sandbox_id,
                          DescribeWaitStatus(exit->wait_status)));
    }
    auto state = RunState();
    struct stat st {};
    if (state.ok() && *state == "running" && ::stat(paths_.agent_socket.c_str(), &st) == 0) {
      return agent_channel();
    }
    last = state.ok() ? absl::UnavailableError("status " + *state) : state.status();
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrFormat("sandbox %s: the VM is not running with its agent channel: %s",
                      vm_.sandbox_id, last.message()));
}

AgentChannel SvHypervisor::agent_channel() const {
  AgentChannel c;
  c.kind = AgentChannel::Kind::kSerialSocket;
  c.path = paths_.agent_socket;
  return c;
}

absl::Status SvHypervisor::Stop(absl::Duration timeout) {
  VmmProcess* vmm = process();
  if (vmm == nullptr) return absl::OkStatus();
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stop_requested = true;
  }
  absl::Time start = absl::Now();
  if (!vmm->exit()) {
    auto pressed = Qmp("system_powerdown", std::min(timeout, absl::Seconds(2)));
    if (pressed.ok()) {
      // Wait for the exit, or for the guest's SHUTDOWN: a VMM that stays up after it (as
      // with QEMU's -no-shutdown, or a client still attached) is then told to quit.
      std::unique_lock<std::mutex> lock(shared_->mu);
      shared_->cv.wait_for(
          lock,
          absl::ToChronoMilliseconds(std::max(start + timeout - absl::Now(), absl::ZeroDuration())),
          [&] { return shared_->exited || !shared_->shutdown_reason.empty(); });
      lock.unlock();
      (void)vmm->WaitFor(absl::Milliseconds(500));
    }
    if (!vmm->exit()) {
      spdlog::info("sandbox={} op=stop vmm=stratovirt still_running=true action=quit",
                   vm_.sandbox_id);
      (void)Qmp("quit", absl::Seconds(2));
      if (!vmm->WaitFor(absl::Seconds(3)).ok()) (void)vmm->Signal(SIGKILL);
    }
  }
  return FinishAfterExit(absl::Seconds(10));
}

absl::Status SvHypervisor::Kill() {
  VmmProcess* vmm = process();
  if (vmm == nullptr) return absl::OkStatus();
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stop_requested = true;
  }
  (void)vmm->Signal(SIGKILL);
  return FinishAfterExit(absl::Seconds(10));
}

absl::Status SvHypervisor::FinishAfterExit(absl::Duration wait) {
  std::shared_ptr<QmpClient> qmp;
  VmmProcess* vmm;
  {
    std::lock_guard<std::mutex> lock(mu_);
    vmm = vmm_.get();
    qmp = std::move(qmp_);
  }
  auto exit = vmm->WaitFor(wait);
  if (!exit.ok()) {
    return absl::InternalError(absl::StrFormat("sandbox %s: stratovirt pid %d did not exit: %s",
                                               vm_.sandbox_id, vmm->identity().pid,
                                               exit.status().message()));
  }
  if (qmp) qmp->Close();
  for (const std::string& f : {paths_.qmp_socket, paths_.agent_socket}) (void)::unlink(f.c_str());
  return absl::OkStatus();
}

std::optional<ProcessIdentity> SvHypervisor::Identity() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!vmm_) return std::nullopt;
  return vmm_->identity();
}

void SvHypervisor::SetExitCallback(ExitCallback callback) {
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->exit_callback = std::move(callback);
}

json SvHypervisor::PersistedState() const {
  std::lock_guard<std::mutex> lock(mu_);
  json j = {{"driver", "stratovirt"},
            {"sandbox_id", vm_.sandbox_id},
            {"state_dir", vm_.state_dir},
            {"socket_dir", vm_.socket_dir}};
  if (vmm_) j["vmm"] = {{"pid", vmm_->identity().pid}, {"start_time", vmm_->identity().start_time}};
  return j;
}

absl::Status SvHypervisor::Recover(const json& state) {
  if (!state.is_object() || state.value("driver", "") != "stratovirt") {
    return absl::InvalidArgumentError("stratovirt: Recover needs the state PersistedState() gave");
  }
  if (Identity()) return absl::FailedPreconditionError("stratovirt: Recover on a running instance");
  vm_.sandbox_id = state.value("sandbox_id", "");
  vm_.state_dir = state.value("state_dir", "");
  vm_.socket_dir = state.value("socket_dir", "");
  const json vmm_json = state.value("vmm", json());
  if (vm_.sandbox_id.empty() || vm_.state_dir.empty() || vm_.socket_dir.empty() ||
      !vmm_json.is_object() || !vmm_json.value("pid", json()).is_number_integer() ||
      !vmm_json.value("start_time", json()).is_number_unsigned()) {
    return absl::DataLossError("stratovirt state: sandbox_id, dirs or vmm identity missing");
  }
  paths_ = SvPaths::For(vm_);
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->sandbox_id = vm_.sandbox_id;
  }
  ProcessIdentity id{vmm_json["pid"].get<pid_t>(), vmm_json["start_time"].get<uint64_t>()};
  ASSIGN_OR_RETURN(std::unique_ptr<VmmProcess> vmm, VmmProcess::Attach(io_, id));
  {
    std::lock_guard<std::mutex> lock(mu_);
    vmm_ = std::move(vmm);
  }
  WatchExit();
  absl::Status st = ConnectQmp(absl::Now() + absl::Seconds(5));
  if (st.ok()) st = RunState().status();
  if (!st.ok()) {
    return absl::UnavailableError(
        absl::StrFormat("sandbox %s: stratovirt pid %d is alive but QMP does not answer: %s",
                        vm_.sandbox_id, id.pid, st.message()));
  }
  spdlog::info("sandbox={} op=recover vmm=stratovirt pid={}", vm_.sandbox_id, id.pid);
  return absl::OkStatus();
}

void SvHypervisor::Describe(std::map<std::string, std::string>* info) const {
  (*info)["vmm"] = "stratovirt";
  (*info)["machine"] = config_.machine_type;
  (*info)["vmm_log"] = paths_.vmm_log;
  (*info)["qmp_socket"] = paths_.qmp_socket;
  (*info)["agent_socket"] = paths_.agent_socket;
  if (auto id = Identity()) (*info)["vmm_pid"] = absl::StrFormat("%d", id->pid);
}

}  // namespace kuasar::vmm
