#include "runtime/ttrpc/call_context.h"

#include <utility>

#include "runtime/ttrpc/wire.h"

namespace kuasar::ttrpc {

CallContext::CallContext(std::string service, std::string method, Metadata metadata,
                         std::optional<Clock::time_point> deadline)
    : service_(std::move(service)),
      method_(std::move(method)),
      metadata_(std::move(metadata)),
      deadline_(deadline) {}

std::optional<std::string> CallContext::GetMetadata(std::string_view key) const {
  auto it = metadata_.find(std::string(key));
  if (it == metadata_.end()) return std::nullopt;
  return it->second;
}

bool CallContext::Cancelled() const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) return true;
  }
  return deadline_ && Clock::now() >= *deadline_;
}

absl::Status CallContext::CancelStatus() const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) return IsolatedCopy(cancel_status_);
  }
  if (deadline_ && Clock::now() >= *deadline_) {
    return absl::DeadlineExceededError("context deadline exceeded");
  }
  return absl::OkStatus();
}

void CallContext::OnCancel(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    if (!cancelled_) {
      callbacks_.push_back(std::move(fn));
      return;
    }
  }
  fn();
}

bool CallContext::WaitForCancel(std::chrono::nanoseconds timeout) const {
  auto until = Clock::now() + timeout;
  if (deadline_ && *deadline_ < until) until = *deadline_;
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_until(lock, until, [&] { return cancelled_; });
  lock.unlock();
  return Cancelled();
}

void CallContext::Cancel(absl::Status reason) {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_ || finished_) return;
    cancelled_ = true;
    cancel_status_ = IsolatedCopy(reason);
    callbacks.swap(callbacks_);
  }
  cv_.notify_all();
  for (auto& fn : callbacks) fn();
}

void CallContext::MarkFinished() {
  std::vector<std::function<void()>> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    finished_ = true;
    dropped.swap(callbacks_);
  }
}

}  // namespace kuasar::ttrpc
