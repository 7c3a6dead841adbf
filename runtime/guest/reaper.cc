#include "runtime/guest/reaper.h"

#include <sys/wait.h>

#include "runtime/base/logging.h"

namespace kuasar::guest {

absl::StatusOr<std::unique_ptr<Reaper>> Reaper::Start(boost::asio::io_context& io,
                                                      ExitRegistry* exits) {
  std::unique_ptr<Reaper> r(new Reaper(exits));
  Reaper* self = r.get();
  auto watcher = SignalWatcher::Start(io, {SIGCHLD}, [self](const signalfd_siginfo&) {
    // signalfd coalesces SIGCHLDs: one wakeup may stand for many exits.
    self->ReapNow();
  });
  if (!watcher.ok()) return watcher.status();
  r->watcher_ = std::move(*watcher);
  // Children that exited before the signalfd existed raised no event we can still see.
  r->ReapNow();
  return r;
}

Reaper::~Reaper() {
  if (watcher_) watcher_->Close();
}

int Reaper::ReapNow() {
  int n = 0;
  while (true) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;  // 0: children left, none exited; -1 ECHILD: no children
    ++n;
    spdlog::debug("op=reap pid={} status={}", pid, status);
    exits_->Deliver(pid, status, absl::Now());
  }
  reaped_ += static_cast<uint64_t>(n);
  return n;
}

uint64_t Reaper::reaped() const { return reaped_.load(); }

}  // namespace kuasar::guest
