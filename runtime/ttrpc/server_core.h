// ServerCore: the state a Server shares with its connections: the method registry, the
// worker pool, the live connections, the shutdown flag. Connections hold it by
// shared_ptr, so it outlives the Server object while a connection winds down.
// Internal to runtime/ttrpc. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/ttrpc/call_options.h"
#include "runtime/ttrpc/handlers.h"
#include "runtime/ttrpc/io_lifetime.h"

namespace kuasar::ttrpc {

struct MethodEntry {
  enum class Kind { kUnary, kBlockingUnary, kStream };
  Kind kind = Kind::kUnary;
  UnaryHandler unary;
  BlockingUnaryHandler blocking;
  StreamHandler stream;
  StreamKind stream_kind;
};

struct ConnectionLimits {
  std::chrono::milliseconds partial_frame_timeout{30'000};
  std::size_t stream_buffer = 64;  // inbound messages queued per stream (Go: 64)
  std::chrono::milliseconds stream_full_wait{1000};  // Go: wait 1 s, then fail the stream
};

class ServerCore {
 public:
  ServerCore(ConnectionLimits limits, std::shared_ptr<IoLifetime> lifetime)
      : limits_(limits), lifetime_(std::move(lifetime)) {}

  const ConnectionLimits& limits() const { return limits_; }
  const std::shared_ptr<IoLifetime>& lifetime() const { return lifetime_; }

  absl::Status Register(std::string_view service, std::string_view method, MethodEntry entry);
  // UNIMPLEMENTED "service X" / "method Y", as Go ttrpc answers.
  absl::StatusOr<std::shared_ptr<const MethodEntry>> Lookup(std::string_view service,
                                                            std::string_view method) const;

  void SetWorkerPool(boost::asio::thread_pool* pool);
  // Queues `fn` on the worker pool; false once the server has let go of its pool.
  bool RunOnWorker(std::function<void()> fn);

  // Connection bookkeeping; keys are raw pointers, values weak (connections own
  // themselves through their pending operations).
  bool AddConnection(const std::shared_ptr<ServerConnection>& conn);
  void RemoveConnection(const ServerConnection* conn);
  std::vector<std::shared_ptr<ServerConnection>> Connections() const;
  std::size_t ConnectionCount() const;
  // True if every connection is gone by `until`.
  bool WaitNoConnections(std::chrono::steady_clock::time_point until) const;

  // From now on AddConnection refuses.
  void BeginShutdown();

 private:
  using MethodMap = std::map<std::string, std::shared_ptr<const MethodEntry>, std::less<>>;
  const ConnectionLimits limits_;
  const std::shared_ptr<IoLifetime> lifetime_;

  mutable std::shared_mutex registry_mu_;
  std::map<std::string, MethodMap, std::less<>> services_;

  std::mutex pool_mu_;
  boost::asio::thread_pool* pool_ = nullptr;

  mutable std::mutex conn_mu_;
  mutable std::condition_variable conn_cv_;
  std::map<const ServerConnection*, std::weak_ptr<ServerConnection>> connections_;
  bool shutting_down_ = false;
};

}  // namespace kuasar::ttrpc
