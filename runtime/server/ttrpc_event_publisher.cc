#include "runtime/server/ttrpc_event_publisher.h"

#include "containerd/services/ttrpc/events/v1/events.pb.h"
#include "runtime/base/logging.h"

namespace kuasar {

TtrpcEventPublisher::TtrpcEventPublisher(std::string address, size_t max_queue)
    : address_(std::move(address)), max_queue_(max_queue), thread_([this] { Run(); }) {}

TtrpcEventPublisher::~TtrpcEventPublisher() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void TtrpcEventPublisher::Publish(std::string_view ns, std::string_view topic,
                                  const google::protobuf::Message& event) {
  containerd::services::events::ttrpc::v1::ForwardRequest req;
  auto* env = req.mutable_envelope();
  int64_t now = absl::ToUnixNanos(absl::Now());
  env->mutable_timestamp()->set_seconds(now / 1000000000);
  env->mutable_timestamp()->set_nanos(static_cast<int32_t>(now % 1000000000));
  env->set_namespace_(std::string(ns));
  env->set_topic(std::string(topic));
  // containerd's typeurl names protobuf events by their full name, without a prefix.
  env->mutable_event()->set_type_url(event.GetDescriptor()->full_name());
  env->mutable_event()->set_value(event.SerializeAsString());
  {
    std::lock_guard<std::mutex> l(mu_);
    if (queue_.size() >= max_queue_) {
      queue_.pop_front();
      ++dropped_;
      spdlog::error("op=publish-event dropped=oldest reason=queue-full queue={}", max_queue_);
    }
    queue_.push_back(req.SerializeAsString());
  }
  cv_.notify_all();
}

void TtrpcEventPublisher::Run() {
  absl::Duration backoff = absl::Milliseconds(50);
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    std::string payload = queue_.front();
    l.unlock();
    absl::Status st;
    if (!client_ || !client_->IsConnected()) {
      auto c = ttrpc::Client::Connect(address_);
      if (c.ok()) {
        client_ = std::move(*c);
      } else {
        st = c.status();
      }
    }
    if (st.ok()) {
      ttrpc::CallOptions opts;
      opts.timeout = std::chrono::seconds(5);
      auto r = client_->Call("containerd.services.events.ttrpc.v1.Events", "Forward", payload, opts);
      st = r.status();
    }
    l.lock();
    if (st.ok()) {
      queue_.pop_front();
      ++sent_;
      backoff = absl::Milliseconds(50);
      cv_.notify_all();
      continue;
    }
    if (!absl::IsUnavailable(st) && !absl::IsDeadlineExceeded(st) && !absl::IsNotFound(st) &&
        !absl::IsPermissionDenied(st)) {
      // containerd refused this event (bad payload): retrying would wedge the queue.
      spdlog::error("op=publish-event dropped=refused error=\"{}\"", st.message());
      queue_.pop_front();
      ++dropped_;
      continue;
    }
    client_.reset();
    spdlog::debug("op=publish-event retry_in={} error=\"{}\"", absl::FormatDuration(backoff),
                  st.message());
    cv_.wait_for(l, absl::ToChronoMilliseconds(backoff), [&] { return stopping_; });
    if (stopping_) return;
    backoff = std::min(backoff * 2, absl::Seconds(2));
  }
}

bool TtrpcEventPublisher::Flush(absl::Duration timeout) {
  std::unique_lock<std::mutex> l(mu_);
  return cv_.wait_for(l, absl::ToChronoMilliseconds(timeout), [&] { return queue_.empty(); });
}

uint64_t TtrpcEventPublisher::sent() const {
  std::lock_guard<std::mutex> l(mu_);
  return sent_;
}

uint64_t TtrpcEventPublisher::dropped() const {
  std::lock_guard<std::mutex> l(mu_);
  return dropped_;
}

}  // namespace kuasar
