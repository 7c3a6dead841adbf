// TaskBridge: many ttrpc connections over one byte stream. A VM whose agent channel is a
// virtio-serial port (QEMU, StratoVirt here: no vhost-vsock) offers the host exactly one
// stream, yet containerd opens a ttrpc connection per container and the sandboxer wants
// its own. The bridge listens on the pod's task socket, gives each downstream stream a
// fresh upstream stream id, and routes responses and stream data back by id. It looks
// inside frames only for an Interceptor (rewriting Task.Create for a guest that cannot
// see host paths). Everything runs on one io_context thread; Close from any other thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <boost/asio/io_context.hpp>

#include "absl/status/statusor.h"
#include "runtime/base/unique_fd.h"

namespace kuasar {

class TaskBridge {
 public:
  // Sees every request on its way to the agent (io thread; keep it quick). Returning an
  // error answers the caller with it and sends nothing upstream.
  class Interceptor {
   public:
    virtual ~Interceptor() = default;
    virtual absl::StatusOr<std::string> OnRequest(const std::string& service,
                                                  const std::string& method,
                                                  std::string payload) = 0;
    // The agent answered `method`; `ok` is its status.
    virtual void OnResponse(const std::string& service, const std::string& method,
                            const std::string& request_payload, bool ok) {
      (void)service, (void)method, (void)request_payload, (void)ok;
    }
  };

  // Serves `listen_path` (0600) and relays onto `upstream` (a connected stream).
  static absl::StatusOr<std::shared_ptr<TaskBridge>> Start(boost::asio::io_context& io,
                                                           UniqueFd upstream,
                                                           const std::string& listen_path,
                                                           Interceptor* interceptor = nullptr);
  ~TaskBridge();

  // Runs once when the agent's stream closes (the VM went away): the bridge then closes
  // every downstream connection and stops listening.
  void OnUpstreamClosed(std::function<void(const absl::Status&)> fn);
  void Close();
  size_t downstream_count() const;

  struct Impl;

 private:
  explicit TaskBridge(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace kuasar
