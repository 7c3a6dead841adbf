// TtrpcEventPublisher: forwards task events to containerd's ttrpc events service
// (containerd.services.events.ttrpc.v1.Events/Forward on <containerd socket>.ttrpc), as
// shims do. Publish queues and returns; one thread sends in order, reconnecting with
// backoff while containerd is away. The queue is bounded: past `max_queue` the oldest
// event is dropped with an error log. Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "runtime/core/event_publisher.h"
#include "runtime/ttrpc/client.h"

namespace kuasar {

class TtrpcEventPublisher final : public EventPublisher {
 public:
  explicit TtrpcEventPublisher(std::string containerd_ttrpc_address, size_t max_queue = 16384);
  ~TtrpcEventPublisher() override;

  void Publish(std::string_view ns, std::string_view topic,
               const google::protobuf::Message& event) override;

  // Blocks until the queue is empty or `timeout` passes; true if it emptied.
  bool Flush(absl::Duration timeout);
  uint64_t sent() const;
  uint64_t dropped() const;

 private:
  void Run();

  const std::string address_;
  const size_t max_queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;  // serialized ForwardRequests
  bool stopping_ = false;
  uint64_t sent_ = 0, dropped_ = 0;
  std::unique_ptr<ttrpc::Client> client_;
  std::thread thread_;
};

}  // namespace kuasar
