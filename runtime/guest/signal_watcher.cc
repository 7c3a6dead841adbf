#include "runtime/guest/signal_watcher.h"

#include <sys/signalfd.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <mutex>

#include "runtime/base/status_macros.h"
#include "runtime/base/unique_fd.h"

namespace kuasar::guest {

void BlockAgentSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGPWR}) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

struct SignalWatcher::State : std::enable_shared_from_this<State> {
  State(boost::asio::io_context& io, int fd, Callback cb) : sd(io, fd), callback(std::move(cb)) {}

  void Arm() {
    sd.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                  [self = shared_from_this()](const boost::system::error_code& ec) {
                    if (ec) return;  // closed
                    self->Drain();
                  });
  }

  void Drain() {
    Callback cb;
    {
      std::lock_guard<std::mutex> l(mu);
      if (closed) return;
      cb = callback;
    }
    signalfd_siginfo info[16];
    while (true) {
      ssize_t n = ::read(sd.native_handle(), info, sizeof(info));
      if (n <= 0) break;  // EAGAIN: drained
      for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(info[0]); ++i) cb(info[i]);
    }
    Arm();
  }

  boost::asio::posix::stream_descriptor sd;
  std::mutex mu;
  bool closed = false;
  Callback callback;
};

absl::StatusOr<std::unique_ptr<SignalWatcher>> SignalWatcher::Start(
    boost::asio::io_context& io, std::initializer_list<int> signals, Callback callback) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) sigaddset(&set, s);
  UniqueFd fd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "signalfd");
  auto state = std::make_shared<State>(io, fd.Release(), std::move(callback));
  state->Arm();
  return std::unique_ptr<SignalWatcher>(new SignalWatcher(std::move(state)));
}

SignalWatcher::~SignalWatcher() { Close(); }

void SignalWatcher::Close() {
  std::lock_guard<std::mutex> l(state_->mu);
  if (state_->closed) return;
  state_->closed = true;
  // close() on a descriptor the io thread may be waiting on: asio deregisters it first
  // under its own lock, and the pending wait completes with operation_aborted.
  boost::asio::post(state_->sd.get_executor(), [s = state_] {
    boost::system::error_code ec;
    s->sd.close(ec);
  });
}

}  // namespace kuasar::guest
