// ttrpc Client (containerd/ttrpc PROTOCOL.md) over a unix socket or any connected byte
// stream. One connection carries many concurrent calls from many threads: blocking
// Call, CallAsync with a callback, and streams. When the connection dies every pending
// call fails promptly with UNAVAILABLE. Thread-safe, except that blocking methods
// (Call, Close, ClientStream's) must not run on the client's io thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/base/unique_fd.h"
#include "runtime/ttrpc/call_options.h"
#include "runtime/ttrpc/client_stream.h"

namespace boost::asio {
class io_context;
}

namespace kuasar::ttrpc {

struct ClientOptions {
  // Run on this io_context (the caller runs it and keeps it alive past the Client);
  // when null the client owns one with a single thread.
  boost::asio::io_context* io_context = nullptr;
  // Close the connection if a frame from the server stays incomplete this long.
  std::chrono::milliseconds partial_frame_timeout{30'000};
  // Runs once, on the io thread, when the connection closes for any reason.
  std::function<void(const absl::Status&)> on_disconnect;
};

class Client {
 public:
  using Callback = std::function<void(absl::StatusOr<std::string>)>;

  static absl::StatusOr<std::unique_ptr<Client>> Connect(const std::string& socket_path,
                                                         ClientOptions options = {});
  // Takes ownership of a connected stream fd (socketpair end, virtio-serial port).
  static absl::StatusOr<std::unique_ptr<Client>> FromFd(UniqueFd fd, ClientOptions options = {});
  // Close() with no grace; pending calls fail with UNAVAILABLE.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Unary call: the response payload, or the server's status (code and message as
  // sent), DEADLINE_EXCEEDED at options.timeout, UNAVAILABLE if the connection is lost.
  absl::StatusOr<std::string> Call(std::string_view service, std::string_view method,
                                   std::string_view request, const CallOptions& options = {});
  // As Call, but returns at once; `done` runs exactly once, on the io thread (it must
  // not block).
  void CallAsync(std::string_view service, std::string_view method, std::string_view request,
                 const CallOptions& options, Callback done);

  // Opens a stream. `request` is the first message for a method whose client side does
  // not stream (e.g. the request of a server-streaming call); otherwise leave it empty.
  absl::StatusOr<std::unique_ptr<ClientStream>> NewStream(std::string_view service,
                                                          std::string_view method,
                                                          StreamKind kind,
                                                          std::string_view request = {},
                                                          const CallOptions& options = {});

  // Refuses new calls, waits up to `grace` for pending ones, then closes the connection
  // (what is still pending fails with UNAVAILABLE). Idempotent.
  absl::Status Close(std::chrono::milliseconds grace = std::chrono::milliseconds(0));
  bool IsConnected() const;

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kuasar::ttrpc
