#include "runtime/base/logging.h"
#include "runtime/server/sandboxer_daemon.h"

#include <sys/stat.h>
#include <unistd.h>

#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "runtime/base/socket_path.h"
#include "runtime/base/status_macros.h"
#include "runtime/server/backend_registry.h"
#include "runtime/server/task_ttrpc_endpoints.h"
#include "runtime/server/ttrpc_event_publisher.h"

namespace kuasar {

absl::StatusOr<std::unique_ptr<SandboxerDaemon>> SandboxerDaemon::Start(
    const Config& config, std::unique_ptr<SandboxBackend> backend,
    std::unique_ptr<EventPublisher> events, std::unique_ptr<TaskEndpoints> task_endpoints) {
  std::unique_ptr<SandboxerDaemon> d(new SandboxerDaemon());
  d->config_ = config;
  const std::string& listen = config.sandboxer.listen;
  RETURN_IF_ERROR(PrepareSocketPath(listen));

  d->events_ = events ? std::move(events)
                      : std::make_unique<TtrpcEventPublisher>(config.containerd.ttrpc_address);
  d->task_endpoints_ = task_endpoints ? std::move(task_endpoints)
                                      : std::make_unique<TtrpcTaskEndpoints>();
  if (!backend) {
    ASSIGN_OR_RETURN(backend, MakeBackend(config.sandboxer.kind));
  }
  ASSIGN_OR_RETURN(d->controller_,
                   SandboxController::Create(config, std::move(backend), d->events_.get(),
                                             d->task_endpoints_.get()));
  ASSIGN_OR_RETURN(d->recovery_, d->controller_->Recover());

  d->workers_ = std::make_unique<boost::asio::thread_pool>(
      static_cast<size_t>(config.sandboxer.worker_threads));
  d->service_ = std::make_unique<GrpcSandboxService>(d->controller_.get(), d->workers_.get());

  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("unix:", listen), grpc::InsecureServerCredentials());
  builder.RegisterService(d->service_.get());
  builder.SetMaxReceiveMessageSize(16 << 20);
  // The socket is created by gRPC with the process umask: make it owner-only until
  // SetSocketAccess widens it to the configured mode, so there is no window where
  // others could connect.
  mode_t old_umask = ::umask(0177);
  d->server_ = builder.BuildAndStart();
  ::umask(old_umask);
  if (!d->server_) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen));
  }
  RETURN_IF_ERROR(
      SetSocketAccess(listen, config.sandboxer.socket_mode, config.sandboxer.socket_group));
  spdlog::info("op=listen kind={} socket={} mode={:o} recovered_running={} recovered_stopped={}",
               config.sandboxer.kind, listen, config.sandboxer.socket_mode,
               d->recovery_.recovered_running, d->recovery_.recovered_stopped);
  return d;
}

void SandboxerDaemon::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (server_) {
    // Parked Waits are cancelled at the deadline; containerd retries them after restart.
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_->Wait();
  }
  if (workers_) workers_->join();
  // Only the daemon that listened owns the path; a refused second daemon must not
  // remove the first one's socket.
  if (server_) {
    ::unlink(config_.sandboxer.listen.c_str());
    spdlog::info("op=shutdown socket={}", config_.sandboxer.listen);
  }
}

SandboxerDaemon::~SandboxerDaemon() { Shutdown(); }

}  // namespace kuasar
