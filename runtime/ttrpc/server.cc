#include "runtime/ttrpc/server.h"

#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "runtime/ttrpc/server_connection.h"
#include "runtime/ttrpc/server_core.h"
#include "runtime/ttrpc/unix_listener.h"

#include <spdlog/spdlog.h>

namespace kuasar::ttrpc {
namespace {

absl::Status StartConnection(boost::asio::io_context& io, const std::shared_ptr<ServerCore>& core,
                             UniqueFd fd, ServeConnectionOptions options = {}) {
  if (!fd) return absl::InvalidArgumentError("ttrpc: ServeConnection needs an open fd");
  auto conn = std::make_shared<ServerConnection>(io, std::move(fd), core, std::move(options.tag),
                                                 std::move(options.on_closed));
  if (!core->AddConnection(conn)) {
    return absl::FailedPreconditionError("ttrpc: server is shut down");
  }
  // Posted before Start, so replayed calls are dispatched before any new frame is read.
  for (auto& [stream_id, request] : options.replay) conn->Replay(stream_id, std::move(request));
  conn->Start();
  return absl::OkStatus();
}

}  // namespace

struct Server::Impl {
  std::unique_ptr<boost::asio::io_context> owned_io;
  boost::asio::io_context* io = nullptr;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
  std::vector<std::thread> io_threads;
  std::unique_ptr<boost::asio::thread_pool> owned_pool;
  std::shared_ptr<IoLifetime> lifetime = std::make_shared<IoLifetime>();
  std::shared_ptr<ServerCore> core;

  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<UnixListener>> listeners;
  bool shut_down = false;
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  ConnectionLimits limits;
  limits.partial_frame_timeout = options.partial_frame_timeout;
  limits.stream_buffer = options.stream_buffer;
  d.core = std::make_shared<ServerCore>(limits, d.lifetime);
  if (options.io_context != nullptr) {
    d.io = options.io_context;
  } else {
    d.owned_io = std::make_unique<boost::asio::io_context>();
    d.io = d.owned_io.get();
    d.work.emplace(d.io->get_executor());
    for (int i = 0; i < std::max(1, options.io_threads); ++i) {
      d.io_threads.emplace_back([io = d.io] { io->run(); });
    }
  }
  if (options.worker_pool != nullptr) {
    d.core->SetWorkerPool(options.worker_pool);
  } else {
    d.owned_pool =
        std::make_unique<boost::asio::thread_pool>(std::max(1, options.worker_threads));
    d.core->SetWorkerPool(d.owned_pool.get());
  }
}

Server::~Server() {
  Impl& d = *impl_;
  bool done;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    done = d.shut_down;
  }
  if (!done) (void)Shutdown(std::chrono::milliseconds(0));
  d.core->SetWorkerPool(nullptr);
  if (d.owned_pool) d.owned_pool->join();
  if (d.owned_io) {
    d.lifetime->End();
    d.work.reset();
    d.owned_io->stop();
    for (auto& t : d.io_threads) t.join();
  }
  d.listeners.clear();
}

absl::Status Server::RegisterUnary(std::string_view service, std::string_view method,
                                   UnaryHandler handler) {
  MethodEntry e;
  e.kind = MethodEntry::Kind::kUnary;
  e.unary = std::move(handler);
  return impl_->core->Register(service, method, std::move(e));
}

absl::Status Server::RegisterBlockingUnary(std::string_view service, std::string_view method,
                                           BlockingUnaryHandler handler) {
  MethodEntry e;
  e.kind = MethodEntry::Kind::kBlockingUnary;
  e.blocking = std::move(handler);
  return impl_->core->Register(service, method, std::move(e));
}

absl::Status Server::RegisterStream(std::string_view service, std::string_view method,
                                    StreamKind kind, StreamHandler handler) {
  MethodEntry e;
  e.kind = MethodEntry::Kind::kStream;
  e.stream = std::move(handler);
  e.stream_kind = kind;
  return impl_->core->Register(service, method, std::move(e));
}

absl::Status Server::Listen(const std::string& path, unsigned mode) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  if (d.shut_down) return absl::FailedPreconditionError("ttrpc: server is shut down");
  if (d.listeners.count(path) != 0) {
    return absl::AlreadyExistsError(absl::StrFormat("ttrpc: already listening on %s", path));
  }
  boost::asio::io_context* io = d.io;
  std::shared_ptr<ServerCore> core = d.core;
  auto listener = UnixListener::Create(*io, path, mode, [io, core, path](UniqueFd fd) {
    absl::Status st = StartConnection(*io, core, std::move(fd));
    if (!st.ok()) spdlog::debug("ttrpc server: refused connection on {}: {}", path, st.message());
  });
  if (!listener.ok()) return listener.status();
  (*listener)->Start();
  d.listeners.emplace(path, *std::move(listener));
  spdlog::debug("ttrpc server: listening path={} mode={:o}", path, mode);
  return absl::OkStatus();
}

absl::Status Server::StopListening(const std::string& path) {
  std::shared_ptr<UnixListener> listener;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = impl_->listeners.find(path);
    if (it == impl_->listeners.end()) {
      return absl::NotFoundError(absl::StrFormat("ttrpc: not listening on %s", path));
    }
    listener = std::move(it->second);
    impl_->listeners.erase(it);
  }
  listener->Close();
  return absl::OkStatus();
}

std::vector<std::string> Server::ListeningPaths() const {
  std::vector<std::string> out;
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (const auto& [path, l] : impl_->listeners) out.push_back(path);
  return out;
}

absl::Status Server::ServeConnection(UniqueFd fd) {
  return StartConnection(*impl_->io, impl_->core, std::move(fd));
}

absl::Status Server::ServeConnection(UniqueFd fd, ServeConnectionOptions options) {
  return StartConnection(*impl_->io, impl_->core, std::move(fd), std::move(options));
}

std::size_t Server::ConnectionCount() const { return impl_->core->ConnectionCount(); }

absl::Status Server::Shutdown(std::chrono::milliseconds grace) {
  Impl& d = *impl_;
  if (d.io->get_executor().running_in_this_thread()) {
    return absl::FailedPreconditionError("ttrpc: Server::Shutdown called on an io thread");
  }
  std::map<std::string, std::shared_ptr<UnixListener>> listeners;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    d.shut_down = true;
    listeners.swap(d.listeners);
  }
  d.core->BeginShutdown();
  for (auto& [path, l] : listeners) l->Close();
  for (auto& c : d.core->Connections()) c->Drain();
  if (d.core->WaitNoConnections(std::chrono::steady_clock::now() + grace)) {
    return absl::OkStatus();
  }
  auto busy = d.core->Connections();
  for (auto& c : busy) {
    c->ForceClose(absl::UnavailableError("server shut down with calls in flight"));
  }
  d.core->WaitNoConnections(std::chrono::steady_clock::now() + std::chrono::seconds(5));
  spdlog::warn("ttrpc server: shutdown grace of {} ms ran out; closed {} busy connections",
               static_cast<long long>(grace.count()), busy.size());
  return absl::DeadlineExceededError(absl::StrFormat(
      "ttrpc: %d connections still had calls in flight after %d ms; closed them", busy.size(),
      static_cast<long long>(grace.count())));
}

}  // namespace kuasar::ttrpc
