// SandboxerDaemon: one resident sandboxer process. Opens the sandbox-controller gRPC
// socket, recovers every sandbox from the state dir, serves until Shutdown (SIGTERM in
// the executable) and then removes its socket. Start/Shutdown from one thread.
#pragma once

#include <memory>

#include <boost/asio/thread_pool.hpp>
#include <grpcpp/server.h>

#include "absl/status/statusor.h"
#include "runtime/core/config.h"
#include "runtime/core/sandbox_controller.h"
#include "runtime/server/grpc_sandbox_service.h"

namespace kuasar {

class SandboxerDaemon {
 public:
  // Builds the backend for config.sandboxer.kind unless one is given (tests).
  // Events go to containerd's ttrpc socket and task APIs are served over ttrpc unless
  // tests inject their own.
  static absl::StatusOr<std::unique_ptr<SandboxerDaemon>> Start(
      const Config& config, std::unique_ptr<SandboxBackend> backend = nullptr,
      std::unique_ptr<EventPublisher> events = nullptr,
      std::unique_ptr<TaskEndpoints> task_endpoints = nullptr);
  ~SandboxerDaemon();

  // Stops accepting calls, finishes in-flight ones, removes the socket. Sandboxes keep
  // running: a restarted daemon recovers them.
  void Shutdown();

  SandboxController& controller() { return *controller_; }
  const RecoveryReport& recovery() const { return recovery_; }

 private:
  SandboxerDaemon() = default;

  Config config_;
  // Declared before the controller: the backend uses them until it is destroyed.
  std::unique_ptr<EventPublisher> events_;
  std::unique_ptr<TaskEndpoints> task_endpoints_;
  std::unique_ptr<boost::asio::thread_pool> workers_;
  std::unique_ptr<SandboxController> controller_;
  std::unique_ptr<GrpcSandboxService> service_;
  std::unique_ptr<grpc::Server> server_;
  RecoveryReport recovery_;
  bool shut_down_ = false;
};

}  // namespace kuasar
