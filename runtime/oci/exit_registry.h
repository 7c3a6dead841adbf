// ExitRegistry: matches process exits (pid, wait status) with whoever waits for them.
// An exit may arrive before anyone asks (a container that dies at once, before its pid
// file was read): such exits are kept until claimed or until Forget/ a bound is hit.
// Thread-safe; callbacks run on the thread that delivers or registers, outside the lock.
#pragma once

#include <sys/types.h>

#include <deque>
#include <functional>
#include <map>
#include <mutex>

#include "absl/time/time.h"

namespace kuasar {

// An exit someone recorded while nobody was listening (a reaper's journal), replayed on
// recovery.
struct JournaledExit {
  pid_t pid;
  int wait_status;
  absl::Time at;
};

class ExitRegistry {
 public:
  using Callback = std::function<void(int wait_status, absl::Time at)>;

  // Calls `cb` once `pid` exits (immediately if it already did).
  void Watch(pid_t pid, Callback cb);
  // Records an exit; runs the watcher if there is one, else keeps it for later.
  void Deliver(pid_t pid, int wait_status, absl::Time at);
  // Drops a watcher (the caller lost interest) or a kept exit.
  void Forget(pid_t pid);
  // Blocks until `pid` exits or `timeout` passes; false on timeout.
  bool WaitFor(pid_t pid, absl::Duration timeout, int* wait_status);

 private:
  static constexpr size_t kMaxUnclaimed = 4096;
  struct Exit {
    int status;
    absl::Time at;
  };
  std::mutex mu_;
  std::map<pid_t, Callback> watchers_;
  std::map<pid_t, Exit> unclaimed_;
  std::deque<pid_t> unclaimed_order_;
};

}  // namespace kuasar
