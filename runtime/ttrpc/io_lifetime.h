// IoLifetime and WriteBudget: the two pieces of a connection that user-held objects
// (responders, streams) may touch after the connection or its owner is gone.
// IoLifetime: an owner (Server, Client) calls End() before stopping its io_context;
// Run() after that does nothing, so a responder finished late never posts to a dead
// io_context. WriteBudget: bytes queued for writing, so blocking senders can wait for
// room without holding the connection. Both thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <shared_mutex>
#include <vector>

namespace kuasar::ttrpc {

class IoLifetime {
 public:
  // Runs `fn` while the io_context is guaranteed to stay up; false if it has ended.
  // `fn` must not block. Re-entrant (a destructor run by `fn` may call Run again).
  template <typename Fn>
  bool Run(Fn&& fn) {
    if (HeldHere()) {
      fn();
      return true;
    }
    std::shared_lock<std::shared_mutex> lock(mu_);
    if (!alive_) return false;
    Held().push_back(this);
    fn();
    Held().pop_back();
    return true;
  }
  void End() {
    std::unique_lock<std::shared_mutex> lock(mu_);
    alive_ = false;
  }

 private:
  static std::vector<const IoLifetime*>& Held() {
    thread_local std::vector<const IoLifetime*> held;
    return held;
  }
  bool HeldHere() const {
    for (const IoLifetime* l : Held()) {
      if (l == this) return true;
    }
    return false;
  }

  std::shared_mutex mu_;
  bool alive_ = true;
};

class WriteBudget {
 public:
  // Blocking senders wait while more than this many bytes are queued.
  static constexpr std::size_t kHighWater = 8u << 20;

  void Set(std::size_t queued) {
    bool wake;
    {
      std::lock_guard<std::mutex> lock(mu_);
      wake = queued_ > kHighWater && queued <= kHighWater;
      queued_ = queued;
    }
    if (wake) cv_.notify_all();
  }
  void Close() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }
  // Waits until there is room, the connection closed, or `until`; false if closed.
  bool Wait(std::chrono::steady_clock::time_point until) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, until, [&] { return closed_ || queued_ <= kHighWater; });
    return !closed_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t queued_ = 0;
  bool closed_ = false;
};

}  // namespace kuasar::ttrpc
