// GrpcSandboxService: containerd's sandbox controller API (containerd.services.sandbox.v1
// .Controller) over gRPC, translating each call onto the SandboxController. Uses gRPC's
// callback API: quick calls answer inline, blocking ones run on the worker pool, and
// Wait parks until the sandbox exits without holding a thread.
#pragma once

#include <boost/asio/thread_pool.hpp>

#include "containerd/services/sandbox/v1/sandbox.grpc.pb.h"
#include "runtime/core/sandbox_controller.h"

namespace kuasar {

class GrpcSandboxService final
    : public containerd::services::sandbox::v1::Controller::CallbackService {
 public:
  GrpcSandboxService(SandboxController* controller, boost::asio::thread_pool* workers)
      : controller_(controller), workers_(workers) {}

  grpc::ServerUnaryReactor* Create(
      grpc::CallbackServerContext* ctx,
      const containerd::services::sandbox::v1::ControllerCreateRequest* req,
      containerd::services::sandbox::v1::ControllerCreateResponse* resp) override;
  grpc::ServerUnaryReactor* Start(
      grpc::CallbackServerContext* ctx,
      const containerd::services::sandbox::v1::ControllerStartRequest* req,
      containerd::services::sandbox::v1::ControllerStartResponse* resp) override;
  grpc::ServerUnaryReactor* Platform(
      grpc::CallbackServerContext* ctx,
      const containerd::services::sandbox::v1::ControllerPlatformRequest* req,
      containerd::services::sandbox::v1::ControllerPlatformResponse* resp) override;
  grpc::ServerUnaryReactor* Stop(
      grpc::CallbackServerContext* ctx,
      const containerd::services::sandbox::v1::ControllerStopRequest* req,
      containerd::services::sandbox::v1::ControllerStopResponse* resp) override;
  grpc::ServerUnaryReactor* Wait(
      grpc::CallbackServerContext* ctx,
      const containerd::services::sandbox::v1::ControllerWaitRequest* req,
      containerd::services::sandbox::v1::ControllerWaitResponse* resp) override;
  grpc::ServerUnaryReactor* Status(
      grpc::CallbackServerContext* ctx,
      const containerd::services::sandbox::v1::ControllerStatusRequest* req,
      containerd::services::sandbox::v1::ControllerStatusResponse* resp) override;
  grpc::ServerUnaryReactor* Shutdown(
      grpc::CallbackServerContext* ctx,
      const containerd::services::sandbox::v1::ControllerShutdownRequest* req,
      containerd::services::sandbox::v1::ControllerShutdownResponse* resp) override;
  grpc::ServerUnaryReactor* Metrics(
      grpc::CallbackServerContext* ctx,
      const containerd::services::sandbox::v1::ControllerMetricsRequest* req,
      containerd::services::sandbox::v1::ControllerMetricsResponse* resp) override;
  grpc::ServerUnaryReactor* Update(
      grpc::CallbackServerContext* ctx,
      const containerd::services::sandbox::v1::ControllerUpdateRequest* req,
      containerd::services::sandbox::v1::ControllerUpdateResponse* resp) override;

 private:
  // Runs `fn` (returning absl::Status) on the worker pool and finishes the call with it.
  template <typename Fn>
  grpc::ServerUnaryReactor* OnWorker(grpc::CallbackServerContext* ctx, Fn fn);

  SandboxController* controller_;
  boost::asio::thread_pool* workers_;
};

}  // namespace kuasar
