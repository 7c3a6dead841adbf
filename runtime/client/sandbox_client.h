// SandboxClient: a blocking client of the sandbox controller gRPC API, as containerd
// calls it. Used by kuasarctl, the tests, the harness and the Python module.
// Thread-safe (gRPC channels and stubs are).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <grpcpp/channel.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "containerd/services/sandbox/v1/sandbox.grpc.pb.h"
#include "runtime/core/sandbox_backend.h"

namespace kuasar {

class SandboxClient {
 public:
  // `socket_path` is a filesystem path; `sandboxer` is sent as the proxy plugin name.
  explicit SandboxClient(const std::string& socket_path, std::string sandboxer = "kuasar");

  // True once the server accepts connections, polling until `timeout`.
  bool WaitReady(absl::Duration timeout);

  absl::Status Create(const containerd::services::sandbox::v1::ControllerCreateRequest& req,
                      absl::Duration timeout = absl::Seconds(60));
  absl::StatusOr<containerd::services::sandbox::v1::ControllerStartResponse> Start(
      std::string_view id, absl::Duration timeout = absl::Seconds(120));
  absl::StatusOr<PlatformInfo> Platform(std::string_view id);
  absl::Status Stop(std::string_view id, uint32_t timeout_secs = 0);
  absl::StatusOr<containerd::services::sandbox::v1::ControllerWaitResponse> Wait(
      std::string_view id, absl::Duration timeout = absl::InfiniteDuration());
  absl::StatusOr<containerd::services::sandbox::v1::ControllerStatusResponse> StatusProto(
      std::string_view id, bool verbose);
  // The status as a JSON document (kuasarctl status).
  absl::StatusOr<std::string> Status(std::string_view id, bool verbose);
  absl::Status Shutdown(std::string_view id);
  absl::StatusOr<containerd::services::sandbox::v1::ControllerMetricsResponse> Metrics(
      std::string_view id);

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<containerd::services::sandbox::v1::Controller::Stub> stub_;
  std::string sandboxer_;
};

}  // namespace kuasar
