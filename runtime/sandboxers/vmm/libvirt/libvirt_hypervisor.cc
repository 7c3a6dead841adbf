#include "runtime/sandboxers/vmm/libvirt/libvirt_hypervisor.h"

#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/logging.h"
#include "runtime/base/socket_path.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/libvirt/libvirt_shared_state.h"
#include "runtime/sandboxers/vmm/qemu/qemu_command_line.h"

namespace kuasar::vmm {
namespace {

// The last `n` lines of the console, joined with " | ": what a failure message quotes.
std::string ConsoleTail(const std::string& path, size_t n) {
  auto text = ReadSmallFile(path, 4 << 20);
  if (!text.ok()) return "(none)";
  std::vector<std::string> lines = absl::StrSplit(*text, '\n', absl::SkipWhitespace());
  if (lines.empty()) return "(empty)";
  auto from = lines.end() - static_cast<std::ptrdiff_t>(std::min(n, lines.size()));
  std::vector<std::string> tail(from, lines.end());
  for (std::string& l : tail) {
    if (l.size() > 200) l.resize(200);
  }
  return absl::StrJoin(tail, " | ");
}

// The name of a VIR_DOMAIN_EVENT_STOPPED detail; "guest-shutdown" as the QMP drivers say it
// (VmExit::ExitStatus maps it to 0).
std::string StoppedReason(int detail) {
  switch (detail) {
    case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN:
      return "guest-shutdown";
    case VIR_DOMAIN_EVENT_STOPPED_DESTROYED:
      return "destroyed";
    case VIR_DOMAIN_EVENT_STOPPED_CRASHED:
      return "guest-panic";
    case VIR_DOMAIN_EVENT_STOPPED_FAILED:
      return "emulator-failed";  // QEMU died (killed, crashed) without a guest shutdown
    case VIR_DOMAIN_EVENT_STOPPED_MIGRATED:
      return "migrated";
    case VIR_DOMAIN_EVENT_STOPPED_SAVED:
      return "saved";
    default:
      return absl::StrFormat("stopped (libvirt detail %d)", detail);
  }
}

// libvirt hands a callback's opaque pointer to its event thread through its own locks,
// which ThreadSanitizer cannot see (Debian's libvirt is not instrumented). Registering
// and every callback pass through this mutex, so the publication of the opaque block is
// ordered in code TSan does see; events are rare, the lock is uncontended.
std::mutex& OpaquePublication() {
  static std::mutex mu;
  return mu;
}

int OnLifecycle(virConnectPtr, virDomainPtr dom, int event, int detail, void* opaque) {
  { std::lock_guard<std::mutex> published(OpaquePublication()); }
  // A reference of our own for the whole callback: the driver may be destroyed meanwhile
  // and drop its own, and OnStopped notifies the condition variable after unlocking, so
  // without this the state could be freed under that notify (ThreadSanitizer found it).
  std::shared_ptr<LibvirtHypervisor::Shared> shared =
      *static_cast<std::shared_ptr<LibvirtHypervisor::Shared>*>(opaque);
  char uuid[VIR_UUID_STRING_BUFLEN] = {};
  if (virDomainGetUUIDString(dom, uuid) < 0) return 0;
  std::string sandbox_id;
  {
    std::lock_guard<std::mutex> lock(shared->mu);
    if (shared->uuid != uuid) return 0;  // another domain of this connection
    // The driver is gone: nothing waits for this exit, and libvirt's event thread, which
    // lives until the process ends, must not log while the process's exit tears spdlog down.
    if (shared->io == nullptr) return 0;
    sandbox_id = shared->sandbox_id;
  }
  spdlog::debug("sandbox={} op=libvirt_event event={} detail={}", sandbox_id, event, detail);
  if (event == VIR_DOMAIN_EVENT_STOPPED) shared->OnStopped(StoppedReason(detail));
  return 0;
}

void FreeShared(void* opaque) {
  { std::lock_guard<std::mutex> last_callback_done(OpaquePublication()); }
  delete static_cast<std::shared_ptr<LibvirtHypervisor::Shared>*>(opaque);
}

std::string_view StateName(int state) {
  switch (state) {
    case VIR_DOMAIN_RUNNING:
      return "running";
    case VIR_DOMAIN_BLOCKED:
      return "blocked";
    case VIR_DOMAIN_PAUSED:
      return "paused";
    case VIR_DOMAIN_SHUTDOWN:
      return "shutdown";
    case VIR_DOMAIN_SHUTOFF:
      return "shutoff";
    case VIR_DOMAIN_CRASHED:
      return "crashed";
    case VIR_DOMAIN_PMSUSPENDED:
      return "pmsuspended";
    default:
      return "unknown";
  }
}

}  // namespace

void LibvirtHypervisor::Shared::OnStopped(const std::string& why) {
  ExitCallback callback;
  VmExit exit;
  std::string id;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (exited) return;
    id = sandbox_id;
    exited = true;
    reason = why;
    exit.reason = why;
    exit.requested = stop_requested;
    exit.at = absl::Now();
    callback = exit_callback;
  }
  cv.notify_all();
  spdlog::info("sandbox={} op=vmm_exit vmm=libvirt status={} reason={} requested={}", id,
               exit.ExitStatus(), exit.reason, exit.requested);
  // Looked up again when it runs: the driver may have been destroyed (detached) since, and
  // its destructor cleared the callback. Posted under `mu`, and only while `io` is set: the
  // destructor clears it under `mu`, so no post can race the io_context's destruction
  // after the driver is gone (ThreadSanitizer found this one).
  if (callback) {
    std::lock_guard<std::mutex> lock(mu);
    if (io == nullptr) return;
    boost::asio::post(*io, [weak = weak_from_this(), exit] {
      auto self = weak.lock();
      if (!self) return;
      ExitCallback cb;
      {
        std::lock_guard<std::mutex> lock(self->mu);
        cb = self->exit_callback;
      }
      if (cb) cb(exit);
    });
  }
}

LibvirtHypervisor::LibvirtHypervisor(const LibvirtConfig& config, Accel accel,
                                     boost::asio::io_context& io)
    : config_(config), accel_(accel), io_(io), shared_(std::make_shared<Shared>()) {
  shared_->io = &io;
}

LibvirtHypervisor::~LibvirtHypervisor() {
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->exit_callback = nullptr;
    shared_->io = nullptr;
  }
  std::lock_guard<std::mutex> lock(mu_);
  domain_.reset();
  // Not autodestroy: closing the connection leaves the domain running for Recover.
  if (conn_ && callback_id_ >= 0) virConnectDomainEventDeregisterAny(conn_->get(), callback_id_);
  conn_.reset();
}

absl::Status LibvirtHypervisor::Prepare(const VmConfig& vm) {
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
  if (vm.shared_dir &&
      (::stat(vm.shared_dir->host_path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))) {
    return absl::FailedPreconditionError(
        absl::StrFormat("shared dir %s is not a directory", vm.shared_dir->host_path));
  }
  if (!vm.netns_path.empty() && !vm.nets.empty()) {
    // libvirtd opens the taps in its own network namespace, not the pod's.
    return absl::FailedPreconditionError(absl::StrFormat(
        "sandbox %s: libvirt cannot use taps inside the pod's network namespace %s "
        "(set [vmm] mirror_network = false)",
        vm.sandbox_id, vm.netns_path));
  }
  auto uuid = ReadSmallFile("/proc/sys/kernel/random/uuid", 64);
  if (!uuid.ok()) return Annotate(uuid.status(), "a UUID for the domain");
  ASSIGN_OR_RETURN(name_, DomainName(vm.sandbox_id));
  LibvirtPaths paths = LibvirtPaths::For(vm);
  absl::string_view stripped = absl::StripAsciiWhitespace(*uuid);
  std::string id(stripped.data(), stripped.size());
  ASSIGN_OR_RETURN(xml_, BuildDomainXml(config_, vm, paths, accel_, id));
  vm_ = vm;
  paths_ = paths;
  uuid_ = id;
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->sandbox_id = vm.sandbox_id;
  shared_->uuid = id;
  return absl::OkStatus();
}

absl::Status LibvirtHypervisor::Connect(const std::string& uri) {
  ASSIGN_OR_RETURN(std::unique_ptr<LibvirtConnection> conn, LibvirtConnection::Open(uri));
  auto* opaque = new std::shared_ptr<Shared>(shared_);
  { std::lock_guard<std::mutex> publish(OpaquePublication()); }
  int id = virConnectDomainEventRegisterAny(conn->get(), nullptr, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                            VIR_DOMAIN_EVENT_CALLBACK(OnLifecycle), opaque,
                                            FreeShared);
  if (id < 0) {
    delete opaque;
    return LibvirtError(absl::StrFormat("virConnectDomainEventRegisterAny on %s", uri));
  }
  std::lock_guard<std::mutex> lock(mu_);
  conn_ = std::move(conn);
  callback_id_ = id;
  return absl::OkStatus();
}

absl::Status LibvirtHypervisor::Launch() {
  if (xml_.empty()) return absl::FailedPreconditionError("Launch before Prepare");
  if (domain()) return absl::FailedPreconditionError("already launched");
  absl::Time start = absl::Now();
  RETURN_IF_ERROR(PrepareSocketPath(paths_.agent_socket));
  RETURN_IF_ERROR(Connect(config_.uri));
  virDomainPtr dom = virDomainCreateXML(conn_->get(), xml_.c_str(), VIR_DOMAIN_NONE);
  if (dom == nullptr) {
    absl::Status st = LibvirtError(absl::StrFormat("virDomainCreateXML %s", name_));
    return absl::Status(st.code(), absl::StrFormat("sandbox %s: %s; %s", vm_.sandbox_id,
                                                   st.message(), DiagnosticTail()));
  }
  auto qemu = FindQemuByUuid(uuid_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    domain_.reset(dom);
    if (qemu.ok()) qemu_ = *qemu;
  }
  if (!qemu.ok()) {
    spdlog::warn("sandbox={} op=launch vmm=libvirt qemu_pid=unknown reason=\"{}\"",
                 vm_.sandbox_id, qemu.status().message());
  }
  spdlog::info("sandbox={} op=launch vmm=libvirt domain={} uuid={} pid={} accel={} ms={}",
               vm_.sandbox_id, name_, uuid_, qemu.ok() ? qemu->pid : 0, AccelName(accel_),
               absl::ToInt64Milliseconds(absl::Now() - start));
  return absl::OkStatus();
}

virDomainPtr LibvirtHypervisor::domain() const {
  std::lock_guard<std::mutex> lock(mu_);
  return domain_.get();
}

absl::StatusOr<std::string> LibvirtHypervisor::DomainState() {
  virDomainPtr dom = domain();
  if (dom == nullptr) return absl::FailedPreconditionError("the domain is not running");
  int state = 0, reason = 0;
  if (virDomainGetState(dom, &state, &reason, 0) < 0) {
    return LibvirtError(absl::StrFormat("virDomainGetState %s", name_));
  }
  return std::string(StateName(state));
}

absl::StatusOr<AgentChannel> LibvirtHypervisor::WaitReady(absl::Time deadline) {
  virDomainPtr dom = domain();
  if (dom == nullptr) return absl::FailedPreconditionError("WaitReady before Launch");
  absl::Status last = absl::OkStatus();
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(shared_->mu);
      if (shared_->exited) {
        std::string reason = shared_->reason;
        lock.unlock();
        return absl::FailedPreconditionError(
            absl::StrFormat("sandbox %s: the domain ended while the guest booted (%s); %s",
                            vm_.sandbox_id, reason, DiagnosticTail()));
      }
    }
    // libvirt keeps the port's state from QEMU's VSERPORT_CHANGE in the live XML.
    char* xml = virDomainGetXMLDesc(dom, 0);
    if (xml != nullptr) {
      auto state = VirtioChannelState(xml, kAgentPortName);
      ::free(xml);
      if (state.ok() && *state == "connected") return agent_channel();
      last = state.status();
    } else {
      last = LibvirtError(absl::StrFormat("virDomainGetXMLDesc %s", name_));
      if (absl::IsNotFound(last)) NoteGoneWithoutEvent();
    }
    if (absl::Now() >= deadline) break;
    std::unique_lock<std::mutex> lock(shared_->mu);
    shared_->cv.wait_for(lock, std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrFormat(
      "sandbox %s: the guest agent did not open %s in time%s; %s", vm_.sandbox_id,
      kAgentPortName, last.ok() ? "" : absl::StrFormat(" (%s)", last.message()), DiagnosticTail()));
}

AgentChannel LibvirtHypervisor::agent_channel() const {
  AgentChannel c;
  c.kind = AgentChannel::Kind::kSerialSocket;
  c.path = paths_.agent_socket;
  return c;
}

void LibvirtHypervisor::NoteGoneWithoutEvent() {
  // The STOPPED event may still be on its way (libvirt drops a transient domain as it
  // queues the event): give it a moment to bring the real reason.
  std::unique_lock<std::mutex> lock(shared_->mu);
  if (shared_->cv.wait_for(lock, std::chrono::seconds(1), [&] { return shared_->exited; })) return;
  lock.unlock();
  shared_->OnStopped("the domain ended (no libvirt event)");
}

absl::Status LibvirtHypervisor::WaitGone(absl::Duration wait) {
  virDomainPtr dom = domain();
  absl::Time deadline = absl::Now() + wait;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(shared_->mu);
      if (shared_->cv.wait_for(lock, std::chrono::milliseconds(100),
                               [&] { return shared_->exited; })) {
        return absl::OkStatus();
      }
    }
    int state = 0, reason = 0;
    if (virDomainGetState(dom, &state, &reason, 0) < 0) {
      absl::Status st = LibvirtError("virDomainGetState");
      if (absl::IsNotFound(st)) {
        NoteGoneWithoutEvent();
        return absl::OkStatus();
      }
    } else if (state == VIR_DOMAIN_SHUTOFF) {
      NoteGoneWithoutEvent();
      return absl::OkStatus();
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrFormat(
          "sandbox %s: domain %s still %s after %s", vm_.sandbox_id, name_, StateName(state),
          absl::FormatDuration(wait)));
    }
  }
}

absl::Status LibvirtHypervisor::Stop(absl::Duration timeout) {
  virDomainPtr dom = domain();
  if (dom == nullptr) return absl::OkStatus();
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stop_requested = true;
  }
  absl::Time start = absl::Now();
  if (virDomainShutdownFlags(dom, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN) < 0) {
    spdlog::debug("sandbox={} op=stop powerdown=\"{}\"", vm_.sandbox_id,
                  LibvirtError("virDomainShutdownFlags").message());
  }
  if (!WaitGone(timeout).ok()) {
    spdlog::warn("sandbox={} op=stop reason=\"no power-off within {}\" action=destroy",
                 vm_.sandbox_id, absl::FormatDuration(timeout));
    // SIGTERM first (QEMU quits cleanly), then libvirt's SIGKILL.
    if (virDomainDestroyFlags(dom, VIR_DOMAIN_DESTROY_GRACEFUL) < 0 ||
        !WaitGone(absl::Seconds(3)).ok()) {
      (void)virDomainDestroy(dom);
    }
  }
  RETURN_IF_ERROR(WaitGone(absl::Seconds(15)));
  RemoveFiles();
  spdlog::info("sandbox={} op=stop vmm=libvirt ms={}", vm_.sandbox_id,
               absl::ToInt64Milliseconds(absl::Now() - start));
  return absl::OkStatus();
}

absl::Status LibvirtHypervisor::Kill() {
  virDomainPtr dom = domain();
  if (dom == nullptr) return absl::OkStatus();
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stop_requested = true;
  }
  if (virDomainDestroy(dom) < 0) {
    absl::Status st = LibvirtError(absl::StrFormat("virDomainDestroy %s", name_));
    if (!absl::IsNotFound(st) && !absl::IsFailedPrecondition(st)) return st;
  }
  RETURN_IF_ERROR(WaitGone(absl::Seconds(15)));
  RemoveFiles();
  return absl::OkStatus();
}

void LibvirtHypervisor::RemoveFiles() { (void)::unlink(paths_.agent_socket.c_str()); }

std::optional<ProcessIdentity> LibvirtHypervisor::Identity() const {
  std::lock_guard<std::mutex> lock(mu_);
  return qemu_;
}

void LibvirtHypervisor::SetExitCallback(ExitCallback callback) {
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->exit_callback = std::move(callback);
}

std::string LibvirtHypervisor::DiagnosticTail() const {
  return absl::StrFormat("console.log (%s) ends: %s; QEMU's log is libvirt's (%s)",
                         paths_.console_log, ConsoleTail(paths_.console_log, 6),
                         "/var/log/libvirt/qemu/" + name_ + ".log");
}

}  // namespace kuasar::vmm
