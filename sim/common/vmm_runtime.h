// VmmRuntime: the simulated VMM process's event loop (one io_context, run on the main
// thread, as every socket, timer and child watch here expects), its termination signals
// and its ways out: a normal exit with a code, or death by a signal (crash faults).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <functional>

namespace kuasar::sim {

class VmmRuntime {
 public:
  VmmRuntime();
  boost::asio::io_context& io() { return io_; }

  // SIGTERM, SIGINT and SIGHUP call `fn` (on the loop); the default exits 0.
  void OnTerminate(std::function<void(int sig)> fn) { on_terminate_ = std::move(fn); }
  // Stops the loop; Run returns `code`. Objects are destroyed by their owners afterwards,
  // which kills and reaps the agent and removes sockets.
  void Exit(int code);
  int Run();
  bool exiting() const { return exiting_; }

  // The process dies of `sig` now (no core dump), as a crashed VMM would.
  [[noreturn]] static void DieBySignal(int sig);

 private:
  void WaitSignals();

  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  std::function<void(int)> on_terminate_;
  int exit_code_ = 0;
  bool exiting_ = false;
};

}  // namespace kuasar::sim
