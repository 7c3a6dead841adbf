#include "runtime/sandboxers/vmm/qemu/qemu_hypervisor.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <set>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/logging.h"
#include "runtime/base/socket_path.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/common/qmp_replies.h"
#include "runtime/sandboxers/vmm/common/virtiofs_daemon.h"
#include "runtime/sandboxers/vmm/qemu/qemu_shared_state.h"

namespace kuasar::vmm {
namespace {

using nlohmann::json;

// The last `n` lines of a log, joined with " | ": what a failure message quotes.
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

std::string DescribeWait(int wait_status) {
  if (wait_status < 0) return "the VMM exited";
  if (WIFSIGNALED(wait_status))
    return absl::StrFormat("killed by signal %d", WTERMSIG(wait_status));
  return absl::StrFormat("exited with status %d", WEXITSTATUS(wait_status));
}

}  // namespace

void QemuHypervisor::Shared::OnEvent(const QmpEvent& e) {
  {
    std::lock_guard<std::mutex> lock(mu);
    QmpEventEffect effect = InterpretQmpEvent(e, kAgentPortId);
    // Latched: an agent may close and reopen its port while no host end is attached.
    if (effect.agent_port_open) agent_open = agent_open || *effect.agent_port_open;
    if (effect.shutdown_reason) shutdown_reason = *effect.shutdown_reason;
    if (effect.deleted_device) deleted.insert(*effect.deleted_device);
  }
  cv.notify_all();
  spdlog::debug("sandbox={} op=qmp_event event={} data={}", sandbox_id, e.name, e.data.dump());
}

QemuHypervisor::QemuHypervisor(const QemuConfig& config, Accel accel, bool virtiofsd_rust,
                               boost::asio::io_context& io)
    : config_(config),
      accel_(accel),
      virtiofsd_rust_(virtiofsd_rust),
      io_(io),
      shared_(std::make_shared<Shared>()) {}

QemuHypervisor::~QemuHypervisor() {
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->exit_callback = nullptr;
  }
  std::shared_ptr<QmpClient> qmp;
  {
    std::lock_guard<std::mutex> lock(mu_);
    qmp = std::move(qmp_);
  }
  // The VmmProcess handles detach: a running VM survives for Recover.
}

absl::Status QemuHypervisor::Prepare(const VmConfig& vm) {
  if (vm.sandbox_id.empty() || vm.state_dir.empty() || vm.socket_dir.empty()) {
    return absl::InvalidArgumentError("VM config needs sandbox_id, state_dir and socket_dir");
  }
  struct stat st {};
  if (::stat(vm.state_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrFormat("state dir %s missing", vm.state_dir));
  }
  RETURN_IF_ERROR(CheckSocketDirFits(vm.socket_dir, sizeof("virtiofs.sock") - 1));
  for (const std::string& f : {vm.kernel_path, vm.initrd_path}) {
    if (::access(f.c_str(), R_OK) != 0) {
      return Annotate(ErrnoStatus(errno, "access", f), "guest image (build kuasar-guest-image)");
    }
  }
  if (vm.shared_dir &&
      (::stat(vm.shared_dir->host_path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))) {
    return absl::FailedPreconditionError(
        absl::StrFormat("shared dir %s is not a directory", vm.shared_dir->host_path));
  }
  QemuPaths paths = QemuPaths::For(vm);
  ASSIGN_OR_RETURN(argv_, BuildQemuCommandLine(config_, vm, paths, accel_));
  vm_ = vm;
  paths_ = paths;
  shared_->sandbox_id = vm.sandbox_id;
  return absl::OkStatus();
}

absl::Status QemuHypervisor::Launch() {
  if (argv_.empty()) return absl::FailedPreconditionError("Launch before Prepare");
  if (Identity()) return absl::FailedPreconditionError("already launched");
  absl::Time start = absl::Now();
  absl::Time deadline = start + absl::Seconds(30);
  for (const std::string& s : {paths_.qmp_socket, paths_.agent_socket}) {
    RETURN_IF_ERROR(PrepareSocketPath(s));
  }
  (void)::unlink(paths_.pid_file.c_str());
  std::unique_ptr<VmmProcess> virtiofsd;
  if (vm_.shared_dir && config_.share_fs == ShareFs::kVirtioFs) {
    VirtiofsdOptions o;
    o.daemon_path = config_.virtiofs_daemon_path;
    o.rust = virtiofsd_rust_;
    o.socket_path = paths_.virtiofs_socket;
    o.shared_dir = vm_.shared_dir->host_path;
    o.read_only = vm_.shared_dir->read_only;
    o.cache = config_.virtiofs_cache;
    o.extra_args = config_.virtiofs_extra_args;
    o.log_path = paths_.virtiofsd_log;
    ASSIGN_OR_RETURN(virtiofsd, StartVirtiofsd(io_, o, deadline));
  }
  auto qemu = VmmProcess::Spawn(
      io_, {argv_, paths_.vmm_log, vm_.netns_path, config_.capabilities});
  if (!qemu.ok()) {
    if (virtiofsd) (void)virtiofsd->Kill();
    return Annotate(qemu.status(), absl::StrFormat("sandbox %s: start qemu", vm_.sandbox_id));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    qemu_ = std::move(*qemu);
    virtiofsd_ = std::move(virtiofsd);
  }
  WatchExit();
  absl::Status st = ConnectQmp(deadline);
  if (st.ok()) {
    auto status = Qmp("query-status", nullptr);
    if (!status.ok()) {
      st = status.status();
    } else if (QmpRunStatus(*status) != "running") {
      st = absl::InternalError(absl::StrFormat("QEMU status is %s", status->dump()));
    }
  }
  if (st.ok()) {
    // A guest that opened the port before QMP connected sent its VSERPORT_CHANGE to
    // nobody; query-chardev's frontend-open (set with that event) tells.
    auto chardevs = Qmp("query-chardev", nullptr);
    if (chardevs.ok() && QmpChardevFrontendOpen(*chardevs, kAgentChardevId)) {
      std::lock_guard<std::mutex> lock(shared_->mu);
      shared_->agent_open = true;
    }
  }
  if (!st.ok()) {
    // QEMU refusing its command line closes QMP under us: say so rather than "reset".
    if (auto early = qemu_->WaitFor(absl::Milliseconds(200)); early.ok()) {
      st = absl::FailedPreconditionError(
          absl::StrFormat("qemu %s while starting", DescribeWait(early->wait_status)));
    }
    (void)Kill();
    return absl::Status(st.code(), absl::StrFormat("sandbox %s: launch qemu: %s; %s",
                                                   vm_.sandbox_id, st.message(), DiagnosticTail()));
  }
  spdlog::info("sandbox={} op=launch vmm=qemu pid={} accel={} machine={} ms={}", vm_.sandbox_id,
               Identity()->pid, AccelName(accel_), config_.machine_type,
               absl::ToInt64Milliseconds(absl::Now() - start));
  return absl::OkStatus();
}

absl::Status QemuHypervisor::ConnectQmp(absl::Time deadline) {
  QmpClientOptions o;
  o.io_context = &io_;
  o.on_event = [shared = shared_](const QmpEvent& e) { shared->OnEvent(e); };
  o.on_disconnect = [id = vm_.sandbox_id](const absl::Status& why) {
    spdlog::debug("sandbox={} op=qmp_disconnect reason=\"{}\"", id, why.message());
  };
  VmmProcess* qemu = qemu_.get();
  o.keep_trying = [qemu]() -> absl::Status {
    if (auto exit = qemu->exit()) {
      return absl::FailedPreconditionError(
          absl::StrFormat("qemu %s while starting", DescribeWait(exit->wait_status)));
    }
    return absl::OkStatus();
  };
  ASSIGN_OR_RETURN(std::unique_ptr<QmpClient> client,
                   QmpClient::Connect(paths_.qmp_socket, deadline, std::move(o)));
  std::lock_guard<std::mutex> lock(mu_);
  qmp_ = std::move(client);
  return absl::OkStatus();
}

void QemuHypervisor::WatchExit() {
  qemu_->OnExit([shared = shared_](const VmmProcess::Exit& e) {
    VmExit exit;
    exit.wait_status = e.wait_status;
    exit.at = e.at;
    ExitCallback callback;
    {
      std::lock_guard<std::mutex> lock(shared->mu);
      shared->exited = true;
      exit.requested = shared->stop_requested;
      exit.reason =
          shared->shutdown_reason.empty() ? DescribeWait(e.wait_status) : shared->shutdown_reason;
      callback = shared->exit_callback;
    }
    shared->cv.notify_all();
    spdlog::info("sandbox={} op=vmm_exit vmm=qemu status={} reason={} requested={}",
                 shared->sandbox_id, exit.ExitStatus(), exit.reason, exit.requested);
    if (callback) callback(exit);
  });
}

absl::StatusOr<AgentChannel> QemuHypervisor::WaitReady(absl::Time deadline) {
  {
    std::unique_lock<std::mutex> lock(shared_->mu);
    shared_->cv.wait_for(
        lock, absl::ToChronoMilliseconds(std::max(deadline - absl::Now(), absl::ZeroDuration())),
        [&] { return shared_->agent_open || shared_->exited; });
    if (shared_->agent_open && !shared_->exited) return agent_channel();
    if (shared_->exited) {
      std::string reason = shared_->shutdown_reason;
      lock.unlock();
      return absl::FailedPreconditionError(
          absl::StrFormat("sandbox %s: QEMU exited while the guest booted (%s); %s", vm_.sandbox_id,
                          reason.empty() ? "no shutdown event" : reason, DiagnosticTail()));
    }
  }
  return absl::DeadlineExceededError(
      absl::StrFormat("sandbox %s: the guest agent did not open %s in time; %s", vm_.sandbox_id,
                      kAgentPortName, DiagnosticTail()));
}

AgentChannel QemuHypervisor::agent_channel() const {
  AgentChannel c;
  c.kind = AgentChannel::Kind::kSerialSocket;
  c.path = paths_.agent_socket;
  return c;
}

absl::StatusOr<json> QemuHypervisor::Qmp(std::string_view command, const json& args,
                                         absl::Duration timeout) {
  std::shared_ptr<QmpClient> qmp;
  {
    std::lock_guard<std::mutex> lock(mu_);
    qmp = qmp_;
  }
  if (!qmp) return absl::FailedPreconditionError("the VM is not running");
  return qmp->Execute(command, args, timeout);
}

absl::StatusOr<std::string> QemuHypervisor::RunState() {
  ASSIGN_OR_RETURN(json status, Qmp("query-status", nullptr));
  return QmpRunStatus(status);
}

absl::Status QemuHypervisor::Stop(absl::Duration timeout) {
  VmmProcess* qemu;
  {
    std::lock_guard<std::mutex> lock(mu_);
    qemu = qemu_.get();
  }
  if (qemu == nullptr) return absl::OkStatus();
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stop_requested = true;
  }
  absl::Time start = absl::Now();
  if (!qemu->exit()) {
    // ACPI power button: the agent syncs and powers the guest off; QEMU then exits.
    auto pressed = Qmp("system_powerdown", nullptr, std::min(timeout, absl::Seconds(2)));
    if (!pressed.ok()) {
      // No QMP (it hung or was never reconnected): SIGTERM makes QEMU quit by itself.
      spdlog::warn("sandbox={} op=stop powerdown=\"{}\" action=sigterm", vm_.sandbox_id,
                   pressed.status().message());
      (void)qemu->Signal(SIGTERM);
      if (!qemu->WaitFor(absl::Seconds(3)).ok()) (void)qemu->Signal(SIGKILL);
    } else if (!qemu->WaitFor(std::max(start + timeout - absl::Now(), absl::ZeroDuration())).ok()) {
      spdlog::warn("sandbox={} op=stop reason=\"no power-off within {}\" action=quit",
                   vm_.sandbox_id, absl::FormatDuration(timeout));
      (void)Qmp("quit", nullptr, absl::Seconds(2));  // QEMU may close before replying
      if (!qemu->WaitFor(absl::Seconds(3)).ok()) (void)qemu->Signal(SIGKILL);
    }
  }
  RETURN_IF_ERROR(FinishAfterExit(absl::Seconds(10)));
  spdlog::info("sandbox={} op=stop vmm=qemu ms={}", vm_.sandbox_id,
               absl::ToInt64Milliseconds(absl::Now() - start));
  return absl::OkStatus();
}

absl::Status QemuHypervisor::Kill() {
  VmmProcess* qemu;
  {
    std::lock_guard<std::mutex> lock(mu_);
    qemu = qemu_.get();
  }
  if (qemu == nullptr) return absl::OkStatus();
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stop_requested = true;
  }
  (void)qemu->Signal(SIGKILL);
  return FinishAfterExit(absl::Seconds(10));
}

absl::Status QemuHypervisor::FinishAfterExit(absl::Duration wait) {
  std::shared_ptr<QmpClient> qmp;
  VmmProcess *qemu, *virtiofsd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    qemu = qemu_.get();
    virtiofsd = virtiofsd_.get();
    qmp = std::move(qmp_);
  }
  auto exit = qemu->WaitFor(wait);
  if (!exit.ok()) {
    return absl::InternalError(absl::StrFormat("sandbox %s: QEMU pid %d did not exit: %s",
                                               vm_.sandbox_id, qemu->identity().pid,
                                               exit.status().message()));
  }
  if (qmp) qmp->Close();
  // virtiofsd leaves when QEMU disconnects; make sure of it.
  if (virtiofsd && !virtiofsd->WaitFor(absl::Seconds(2)).ok()) {
    RETURN_IF_ERROR(virtiofsd->Kill());
  }
  for (const std::string& f :
       {paths_.qmp_socket, paths_.agent_socket, paths_.virtiofs_socket, paths_.pid_file}) {
    (void)::unlink(f.c_str());
  }
  return absl::OkStatus();
}

std::optional<ProcessIdentity> QemuHypervisor::Identity() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!qemu_) return std::nullopt;
  return qemu_->identity();
}

void QemuHypervisor::SetExitCallback(ExitCallback callback) {
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->exit_callback = std::move(callback);
}

std::string QemuHypervisor::DiagnosticTail() const {
  // A panic's first line says why; the trace after it fills the tail.
  std::string panic;
  if (auto text = ReadSmallFile(paths_.console_log, 4 << 20); text.ok()) {
    if (size_t at = text->rfind("Kernel panic"); at != std::string::npos) {
      panic = absl::StrFormat("guest: %s; ",
                              text->substr(at, std::min<size_t>(text->find('\n', at) - at, 200)));
    }
  }
  return absl::StrFormat("%sconsole.log (%s) ends: %s; qemu.log ends: %s", panic,
                         paths_.console_log, TailLines(paths_.console_log, 6),
                         TailLines(paths_.vmm_log, 3));
}

}  // namespace kuasar::vmm
