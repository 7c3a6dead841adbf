#include "runtime/oci/exit_registry.h"

#include <condition_variable>
#include <memory>

namespace kuasar {

void ExitRegistry::Watch(pid_t pid, Callback cb) {
  Exit exit{};
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = unclaimed_.find(pid);
    if (it == unclaimed_.end()) {
      watchers_[pid] = std::move(cb);
      return;
    }
    exit = it->second;
    unclaimed_.erase(it);
  }
  cb(exit.status, exit.at);
}

void ExitRegistry::Deliver(pid_t pid, int wait_status, absl::Time at) {
  Callback cb;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = watchers_.find(pid);
    if (it == watchers_.end()) {
      unclaimed_[pid] = {wait_status, at};
      unclaimed_order_.push_back(pid);
      // Bound the memory a flood of unrelated exits could take.
      while (unclaimed_order_.size() > kMaxUnclaimed) {
        unclaimed_.erase(unclaimed_order_.front());
        unclaimed_order_.pop_front();
      }
      return;
    }
    cb = std::move(it->second);
    watchers_.erase(it);
  }
  cb(wait_status, at);
}

void ExitRegistry::Forget(pid_t pid) {
  std::lock_guard<std::mutex> l(mu_);
  watchers_.erase(pid);
  unclaimed_.erase(pid);
}

bool ExitRegistry::WaitFor(pid_t pid, absl::Duration timeout, int* wait_status) {
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    int status = 0;
  };
  auto shared = std::make_shared<Shared>();
  Watch(pid, [shared](int status, absl::Time) {
    std::lock_guard<std::mutex> l(shared->mu);
    shared->done = true;
    shared->status = status;
    shared->cv.notify_all();
  });
  std::unique_lock<std::mutex> l(shared->mu);
  if (!shared->cv.wait_for(l, absl::ToChronoMilliseconds(timeout), [&] { return shared->done; })) {
    l.unlock();
    Forget(pid);
    return false;
  }
  *wait_status = shared->status;
  return true;
}

}  // namespace kuasar
