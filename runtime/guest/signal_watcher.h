// SignalWatcher: delivers signals through a signalfd on the agent's io_context, so
// signal handling is ordinary event code (no async-signal-safety rules). The signals
// must be blocked in every thread first: call BlockAgentSignals() in main() before any
// thread starts. Callbacks run on the io thread; Close from any thread.
#pragma once

#include <sys/signalfd.h>

#include <boost/asio/io_context.hpp>
#include <csignal>
#include <functional>
#include <initializer_list>
#include <memory>

#include "absl/status/statusor.h"

namespace kuasar::guest {

// Blocks SIGCHLD, SIGTERM, SIGINT and SIGPWR in the calling thread (and so in every
// thread it starts later) and ignores SIGPIPE. Children get a clean mask at exec.
void BlockAgentSignals();

class SignalWatcher {
 public:
  using Callback = std::function<void(const signalfd_siginfo&)>;
  static absl::StatusOr<std::unique_ptr<SignalWatcher>> Start(boost::asio::io_context& io,
                                                              std::initializer_list<int> signals,
                                                              Callback callback);
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  void Close();

 private:
  struct State;
  explicit SignalWatcher(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace kuasar::guest
