// Reaper: the agent reaps every child it has, its own spawns and the orphans the kernel
// reparents to it (it is PID 1, or a child subreaper in --init none), and delivers each
// (pid, wait status) into the ExitRegistry, where OciTaskService and LocalSpawner pick
// them up. Driven by SIGCHLD on the io_context. Because it takes every exit with
// waitpid(-1), nothing else in the agent may wait for a child of its own: every spawn
// goes through LocalSpawner (the OCI runtime's short commands included, see
// OciCliEngineOptions::command_spawner). Thread-safe.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "runtime/guest/signal_watcher.h"
#include "runtime/oci/exit_registry.h"

namespace kuasar::guest {

class Reaper {
 public:
  // SIGCHLD must be blocked (BlockAgentSignals) before any thread starts.
  static absl::StatusOr<std::unique_ptr<Reaper>> Start(boost::asio::io_context& io,
                                                       ExitRegistry* exits);
  ~Reaper();

  // Reaps whatever has exited (also run on every SIGCHLD); returns how many.
  int ReapNow();
  // Exits reaped since start, for logs and tests.
  uint64_t reaped() const;

 private:
  explicit Reaper(ExitRegistry* exits) : exits_(exits) {}
  ExitRegistry* exits_;
  std::unique_ptr<SignalWatcher> watcher_;
  std::atomic<uint64_t> reaped_{0};
};

}  // namespace kuasar::guest
