#include "runtime/sandboxers/vmm/common/vmm_process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>

#include "absl/strings/str_format.h"
#include "runtime/base/child_process.h"
#include "runtime/base/status_macros.h"

namespace kuasar::vmm {
namespace {

// Network namespaces are per thread: a fresh thread joins the pod's namespace and
// spawns, and the child (posix_spawn clones that thread) starts inside it. The thread
// then ends, so the daemon never changes namespace, and no nsenter-like helper binary
// (an extra exec per VM) is needed. QEMU must run there because it opens its taps by
// name, and taps are per namespace.
absl::StatusOr<ChildProcess> SpawnInNetns(const std::string& netns_path,
                                          const std::vector<std::string>& argv,
                                          const SpawnOptions& options) {
  if (netns_path.empty()) return ChildProcess::Spawn(argv, options);
  absl::StatusOr<ChildProcess> result = absl::InternalError("spawn thread did not run");
  std::thread spawner([&] {
    UniqueFd ns(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns) {
      result = ErrnoStatus(errno, "open network namespace", netns_path);
      return;
    }
    if (::setns(ns.get(), CLONE_NEWNET) != 0) {
      result = ErrnoStatus(errno, "setns", netns_path);
      return;
    }
    result = ChildProcess::Spawn(argv, options);
  });
  spawner.join();
  return result;
}

// Children whose VmmProcess was destroyed while they ran. ChildProcess would kill them
// when destroyed, but a VM must outlive its handle (and the daemon) to be recovered, so
// they are kept here, never destroyed: an Attach in this process adopts its child back
// (its exact wait status stays known), and leak checkers see them as reachable.
class DetachedChildren {
 public:
  static DetachedChildren& Get() {
    static auto* registry = new DetachedChildren();
    return *registry;
  }
  void Put(std::unique_ptr<ChildProcess> child) {
    std::lock_guard<std::mutex> lock(mu_);
    children_[child->pid()] = std::move(child);
  }
  std::unique_ptr<ChildProcess> Take(pid_t pid) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = children_.find(pid);
    if (it == children_.end()) return nullptr;
    std::unique_ptr<ChildProcess> child = std::move(it->second);
    children_.erase(it);
    return child;
  }

 private:
  std::mutex mu_;
  std::map<pid_t, std::unique_ptr<ChildProcess>> children_;
};

}  // namespace

struct VmmProcess::State {
  explicit State(boost::asio::io_context& io) : io(io), pidfd(io) {}
  boost::asio::io_context& io;
  boost::asio::posix::stream_descriptor pidfd;
  int raw_pidfd = -1;
  std::unique_ptr<ChildProcess> child;  // null when attached
  mutable std::mutex mu;
  std::condition_variable cv;
  std::optional<Exit> exit;
  ExitCallback callback;
  bool detached = false;
};

VmmProcess::VmmProcess(std::shared_ptr<State> state, ProcessIdentity identity)
    : state_(std::move(state)), identity_(identity) {}

absl::StatusOr<std::unique_ptr<VmmProcess>> VmmProcess::Spawn(boost::asio::io_context& io,
                                                              const VmmSpawnParams& params) {
  UniqueFd log;
  if (!params.log_path.empty()) {
    log.Reset(::open(params.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (!log) return ErrnoStatus(errno, "open", params.log_path);
  }
  SpawnOptions options;
  options.stdout_fd = log.get();
  options.stderr_fd = log.get();
  // Its own process group: a terminal's ^C to the daemon (or a test) does not reach it.
  options.new_process_group = true;
  ASSIGN_OR_RETURN(std::string setpriv, FindSetpriv(params.capabilities));
  ASSIGN_OR_RETURN(ChildProcess child,
                   SpawnInNetns(params.netns_path,
                                WithCapabilities(params.capabilities, setpriv, params.argv),
                                options));
  // Safe from pid reuse: an unreaped child's pid cannot be recycled.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child.pid(), 0)));
  if (!pidfd) return ErrnoStatus(errno, "pidfd_open", params.argv[0]);
  ProcessIdentity id{child.pid(), 0};
  if (auto known = IdentifyProcess(child.pid()); known.ok()) id = *known;  // else: died
  auto state = std::make_shared<State>(io);
  state->raw_pidfd = pidfd.get();
  state->pidfd.assign(pidfd.Release());
  state->child = std::make_unique<ChildProcess>(std::move(child));
  auto process = std::unique_ptr<VmmProcess>(new VmmProcess(std::move(state), id));
  process->Watch();
  return process;
}

absl::StatusOr<std::unique_ptr<VmmProcess>> VmmProcess::Attach(boost::asio::io_context& io,
                                                               const ProcessIdentity& id) {
  std::unique_ptr<ChildProcess> child = DetachedChildren::Get().Take(id.pid);
  auto pidfd = OpenPidfd(id);
  if (!pidfd.ok()) {
    if (child) {
      if (IdentifyProcess(id.pid).ok()) {
        DetachedChildren::Get().Put(std::move(child));  // alive, but not `id`: keep it
      } else {
        (void)child->Wait();  // our exited child: reap it, no zombie
      }
    }
    return pidfd.status();
  }
  auto state = std::make_shared<State>(io);
  state->child = std::move(child);
  state->raw_pidfd = pidfd->get();
  state->pidfd.assign(pidfd->Release());
  auto process = std::unique_ptr<VmmProcess>(new VmmProcess(std::move(state), id));
  process->Watch();
  return process;
}

void VmmProcess::Watch() {
  boost::asio::post(state_->io, [state = state_] {
    // A pidfd becomes readable when the process exits.
    state->pidfd.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                            [state](const boost::system::error_code& ec) {
                              if (ec) return;  // cancelled: detached
                              ExitCallback callback;
                              Exit exit;
                              {
                                std::lock_guard<std::mutex> lock(state->mu);
                                if (state->detached) return;
                                exit.at = absl::Now();
                                if (state->child) {
                                  auto status = state->child->WaitFor(std::chrono::milliseconds(0));
                                  if (status.ok()) exit.wait_status = *status;
                                }
                                state->exit = exit;
                                callback = std::move(state->callback);
                                state->callback = nullptr;
                              }
                              state->cv.notify_all();
                              if (callback) callback(exit);
                            });
  });
}

VmmProcess::~VmmProcess() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->detached = true;
    state_->callback = nullptr;
    if (state_->child && !state_->exit) DetachedChildren::Get().Put(std::move(state_->child));
  }
  boost::asio::post(state_->io, [state = state_] {
    boost::system::error_code ignored;
    state->pidfd.cancel(ignored);
    state->pidfd.close(ignored);
  });
}

bool VmmProcess::is_child() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->child != nullptr;
}

void VmmProcess::OnExit(ExitCallback callback) {
  std::unique_lock<std::mutex> lock(state_->mu);
  if (!state_->exit) {
    state_->callback = std::move(callback);
    return;
  }
  Exit exit = *state_->exit;
  lock.unlock();
  boost::asio::post(state_->io, [callback = std::move(callback), exit] { callback(exit); });
}

std::optional<VmmProcess::Exit> VmmProcess::exit() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->exit;
}

absl::Status VmmProcess::Signal(int sig) {
  if (exit()) return absl::FailedPreconditionError("process already exited");
  if (::syscall(SYS_pidfd_send_signal, state_->raw_pidfd, sig, nullptr, 0) == 0) {
    return absl::OkStatus();
  }
  if (errno == ESRCH) return absl::FailedPreconditionError("process already exited");
  return ErrnoStatus(errno, "pidfd_send_signal", absl::StrFormat("%d", identity_.pid));
}

absl::StatusOr<VmmProcess::Exit> VmmProcess::WaitFor(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(state_->mu);
  if (!state_->cv.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                           [&] { return state_->exit.has_value(); })) {
    return absl::DeadlineExceededError(absl::StrFormat(
        "pid %d still running after %s", identity_.pid, absl::FormatDuration(timeout)));
  }
  return *state_->exit;
}

absl::Status VmmProcess::Kill(absl::Duration wait) {
  absl::Status sent = Signal(SIGKILL);
  if (!sent.ok() && !absl::IsFailedPrecondition(sent)) return sent;
  return WaitFor(wait).status();
}

}  // namespace kuasar::vmm
