// ttrpc Server (containerd/ttrpc PROTOCOL.md) over unix sockets and already-connected
// byte streams. Register methods, then Listen on any number of socket paths and/or hand
// over connected fds; each connection serves many concurrent calls. Unary handlers may
// complete asynchronously through a UnaryResponder; blocking and streaming handlers run
// on a worker pool. Thread-safe: every method may be called from any thread except that
// Shutdown and the destructor must not run on one of the server's io threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "runtime/base/unique_fd.h"
#include "runtime/ttrpc/call_context.h"
#include "runtime/ttrpc/call_options.h"
#include "runtime/ttrpc/handlers.h"
#include "runtime/ttrpc/server_stream.h"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace kuasar::ttrpc {

struct ServerOptions {
  // Run on this io_context (the caller runs it and keeps it alive past the Server);
  // when null the server owns one run by `io_threads` threads.
  boost::asio::io_context* io_context = nullptr;
  int io_threads = 1;
  // Blocking and streaming handlers run here; when null the server owns a pool of
  // `worker_threads` threads.
  boost::asio::thread_pool* worker_pool = nullptr;
  int worker_threads = 4;
  // A connection whose frame started this long ago and is still incomplete is closed.
  std::chrono::milliseconds partial_frame_timeout{30'000};
  // Inbound messages queued per stream before reads pause (Go ttrpc: 64).
  std::size_t stream_buffer = 64;
};

// How an adopted connection is served.
struct ServeConnectionOptions {
  // Reported to handlers as CallContext::connection_tag().
  std::string tag;
  // Requests to dispatch on this connection before reading it, as if they had just
  // arrived: {stream id, serialized ttrpc.Request}. A process that took over a connection
  // from a crashed predecessor uses this to answer calls that were parked there.
  std::vector<std::pair<std::uint32_t, std::string>> replay;
  // Runs once, on an io thread, after the connection closed (its fd is closed by then):
  // an agent on a virtio-serial port re-opens the port from here. Must not block.
  std::function<void(const absl::Status&)> on_closed;
};

class Server {
 public:
  explicit Server(ServerOptions options = {});
  // Shuts down with no grace period if Shutdown was not called.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Registration may happen before or while serving. ALREADY_EXISTS on a duplicate.
  absl::Status RegisterUnary(std::string_view service, std::string_view method,
                             UnaryHandler handler);
  absl::Status RegisterBlockingUnary(std::string_view service, std::string_view method,
                                     BlockingUnaryHandler handler);
  absl::Status RegisterStream(std::string_view service, std::string_view method,
                              StreamKind kind, StreamHandler handler);

  // Serves a new unix socket at `path` with file mode `mode`. A stale socket file is
  // replaced; a live listener at `path` is an error (ALREADY_EXISTS).
  absl::Status Listen(const std::string& path, unsigned mode = 0600);
  // Stops accepting on `path` and removes the socket file. Connections already accepted
  // through it keep being served. NOT_FOUND if not listening there.
  absl::Status StopListening(const std::string& path);
  std::vector<std::string> ListeningPaths() const;

  // Serves one already-connected byte stream (socketpair end, accepted socket,
  // virtio-serial port). Takes ownership of `fd`.
  absl::Status ServeConnection(UniqueFd fd);
  absl::Status ServeConnection(UniqueFd fd, ServeConnectionOptions options);

  // Stops listening, lets calls in flight finish for up to `grace` (idle connections
  // close at once, busy ones when their last call ends), then closes what is left,
  // cancelling its calls. OK if everything drained in time, else DEADLINE_EXCEEDED.
  absl::Status Shutdown(std::chrono::milliseconds grace);

  std::size_t ConnectionCount() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kuasar::ttrpc
