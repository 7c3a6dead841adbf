#include "sim/common/vmm_runtime.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

namespace kuasar::sim {

VmmRuntime::VmmRuntime() : signals_(io_, SIGTERM, SIGINT, SIGHUP) {
  ::signal(SIGPIPE, SIG_IGN);  // a peer closing mid-write is an error code, not a death
  WaitSignals();
}

void VmmRuntime::WaitSignals() {
  signals_.async_wait([this](boost::system::error_code ec, int sig) {
    if (ec) return;
    if (on_terminate_) {
      on_terminate_(sig);
    } else {
      Exit(0);
    }
    WaitSignals();
  });
}

void VmmRuntime::Exit(int code) {
  if (exiting_) return;
  exiting_ = true;
  exit_code_ = code;
  boost::system::error_code ec;
  signals_.cancel(ec);
  io_.stop();
}

int VmmRuntime::Run() {
  io_.run();
  return exit_code_;
}

void VmmRuntime::DieBySignal(int sig) {
  ::prctl(PR_SET_DUMPABLE, 0);  // no core file for a simulated crash
  ::signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
  ::raise(sig);
  ::_exit(128 + sig);  // a signal whose default is to be ignored
}

}  // namespace kuasar::sim
