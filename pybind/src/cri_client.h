// CriClient: a blocking CRI v1 client (RuntimeService and ImageService over gRPC), as a
// kubelet talks to containerd: typed calls for the pod and container lifecycle, and Call()
// for any other unary method by name. Requests and responses cross as JSON text (proto
// field names; see proto_json.h). Endpoints are gRPC targets: "unix:///path",
// "HOST:PORT", "ipv4:ADDR:PORT". Thread-safe (gRPC stubs are).
#pragma once

#include <grpcpp/channel.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cri/v1/api.grpc.pb.h"

namespace kuasar::python {

struct ExecSyncResult {
  std::string stdout_bytes, stderr_bytes;
  int32_t exit_code = 0;
};

class CriClient {
 public:
  explicit CriClient(std::string_view endpoint, absl::Duration timeout = absl::Seconds(120));

  // True once the channel connects, polling until `timeout`.
  bool WaitReady(absl::Duration timeout);
  const std::string& endpoint() const { return endpoint_; }
  absl::Duration timeout() const { return timeout_; }

  absl::StatusOr<std::string> Version();
  // `config_json` is a PodSandboxConfig; returns the pod sandbox id.
  absl::StatusOr<std::string> RunPodSandbox(std::string_view config_json,
                                            std::string_view runtime_handler);
  absl::Status StopPodSandbox(std::string_view pod_id);
  absl::Status RemovePodSandbox(std::string_view pod_id);
  absl::StatusOr<std::string> PodSandboxStatus(std::string_view pod_id, bool verbose);
  absl::StatusOr<std::string> ListPodSandbox(std::string_view filter_json);
  // `config_json` is a ContainerConfig, `sandbox_config_json` the pod's PodSandboxConfig.
  absl::StatusOr<std::string> CreateContainer(std::string_view pod_id, std::string_view config_json,
                                              std::string_view sandbox_config_json);
  absl::Status StartContainer(std::string_view container_id);
  absl::Status StopContainer(std::string_view container_id, int64_t timeout_s);
  absl::Status RemoveContainer(std::string_view container_id);
  absl::StatusOr<std::string> ContainerStatus(std::string_view container_id, bool verbose);
  absl::StatusOr<std::string> ListContainers(std::string_view filter_json);
  absl::StatusOr<std::string> ContainerStats(std::string_view container_id);
  // `timeout` also bounds the command in the container (0 = no limit there).
  absl::StatusOr<ExecSyncResult> ExecSync(std::string_view container_id,
                                          const std::vector<std::string>& cmd,
                                          absl::Duration timeout);
  absl::StatusOr<std::string> PullImage(std::string_view image);  // the image ref

  // Any unary RuntimeService/ImageService method ("ImageFsInfo", "UpdateContainerResources",
  // ...): the request as JSON in, the response as JSON out. NOT_FOUND for unknown names.
  absl::StatusOr<std::string> Call(std::string_view method, std::string_view request_json);
  static std::vector<std::string> MethodNames();

 private:
  using JsonCall = std::function<absl::StatusOr<std::string>(CriClient&, std::string_view)>;
  static const std::map<std::string, JsonCall, std::less<>>& Methods();

  std::string endpoint_;
  absl::Duration timeout_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<runtime::v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<runtime::v1::ImageService::Stub> images_;
};

}  // namespace kuasar::python
