#include "pybind/src/cri_client.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>

#include "absl/strings/str_format.h"
#include "pybind/src/proto_json.h"
#include "runtime/base/status_macros.h"

namespace kuasar::python {
namespace {

namespace cri = ::runtime::v1;
using RuntimeStub = cri::RuntimeService::Stub;
using ImageStub = cri::ImageService::Stub;

template <typename Stub, typename Req, typename Resp>
using StubMethod = grpc::Status (Stub::*)(grpc::ClientContext*, const Req&, Resp*);

// One unary call with the client's deadline; the gRPC code is kept, the method named.
template <typename Stub, typename Req, typename Resp>
absl::StatusOr<Resp> Unary(Stub& stub, StubMethod<Stub, Req, Resp> fn, std::string_view name,
                           const Req& req, absl::Duration timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  Resp resp;
  grpc::Status st = (stub.*fn)(&ctx, req, &resp);
  if (!st.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(st.error_code()),
                        absl::StrFormat("CRI %s: %s", name, st.error_message()));
  }
  return resp;
}

template <typename Req>
absl::StatusOr<Req> Parse(std::string_view json) {
  Req req;
  if (!json.empty()) RETURN_IF_ERROR(JsonToProto(json, &req));
  return req;
}

// A table entry of CriClient::Call: JSON request -> typed call -> JSON response.
template <typename GetStub, typename Stub, typename Req, typename Resp>
std::function<absl::StatusOr<std::string>(CriClient&, std::string_view)> JsonMethod(
    GetStub get_stub, StubMethod<Stub, Req, Resp> fn, const char* name) {
  return [get_stub, fn, name](CriClient& c, std::string_view json) -> absl::StatusOr<std::string> {
    ASSIGN_OR_RETURN(Req req, Parse<Req>(json));
    ASSIGN_OR_RETURN(Resp resp, Unary(get_stub(c), fn, name, req, c.timeout()));
    return ProtoToJson(resp);
  };
}

}  // namespace

CriClient::CriClient(std::string_view endpoint, absl::Duration timeout)
    : endpoint_(endpoint),
      timeout_(timeout),
      channel_(grpc::CreateChannel(endpoint_, grpc::InsecureChannelCredentials())),
      runtime_(cri::RuntimeService::NewStub(channel_)),
      images_(cri::ImageService::NewStub(channel_)) {}

bool CriClient::WaitReady(absl::Duration timeout) {
  return channel_->WaitForConnected(absl::ToChronoTime(absl::Now() + timeout));
}

absl::StatusOr<std::string> CriClient::Version() { return Call("Version", "{}"); }

absl::StatusOr<std::string> CriClient::RunPodSandbox(std::string_view config_json,
                                                     std::string_view runtime_handler) {
  cri::RunPodSandboxRequest req;
  RETURN_IF_ERROR(JsonToProto(config_json, req.mutable_config()));
  req.set_runtime_handler(std::string(runtime_handler));
  ASSIGN_OR_RETURN(auto resp,
                   Unary(*runtime_, &RuntimeStub::RunPodSandbox, "RunPodSandbox", req, timeout_));
  return resp.pod_sandbox_id();
}

absl::Status CriClient::StopPodSandbox(std::string_view pod_id) {
  cri::StopPodSandboxRequest req;
  req.set_pod_sandbox_id(std::string(pod_id));
  return Unary(*runtime_, &RuntimeStub::StopPodSandbox, "StopPodSandbox", req, timeout_).status();
}

absl::Status CriClient::RemovePodSandbox(std::string_view pod_id) {
  cri::RemovePodSandboxRequest req;
  req.set_pod_sandbox_id(std::string(pod_id));
  return Unary(*runtime_, &RuntimeStub::RemovePodSandbox, "RemovePodSandbox", req, timeout_)
      .status();
}

absl::StatusOr<std::string> CriClient::PodSandboxStatus(std::string_view pod_id, bool verbose) {
  cri::PodSandboxStatusRequest req;
  req.set_pod_sandbox_id(std::string(pod_id));
  req.set_verbose(verbose);
  ASSIGN_OR_RETURN(auto resp, Unary(*runtime_, &RuntimeStub::PodSandboxStatus, "PodSandboxStatus",
                                    req, timeout_));
  return ProtoToJson(resp);
}

absl::StatusOr<std::string> CriClient::ListPodSandbox(std::string_view filter_json) {
  cri::ListPodSandboxRequest req;
  if (!filter_json.empty()) RETURN_IF_ERROR(JsonToProto(filter_json, req.mutable_filter()));
  ASSIGN_OR_RETURN(auto resp,
                   Unary(*runtime_, &RuntimeStub::ListPodSandbox, "ListPodSandbox", req, timeout_));
  return ProtoToJson(resp);
}

absl::StatusOr<std::string> CriClient::CreateContainer(std::string_view pod_id,
                                                       std::string_view config_json,
                                                       std::string_view sandbox_config_json) {
  cri::CreateContainerRequest req;
  req.set_pod_sandbox_id(std::string(pod_id));
  RETURN_IF_ERROR(JsonToProto(config_json, req.mutable_config()));
  RETURN_IF_ERROR(JsonToProto(sandbox_config_json, req.mutable_sandbox_config()));
  ASSIGN_OR_RETURN(
      auto resp, Unary(*runtime_, &RuntimeStub::CreateContainer, "CreateContainer", req, timeout_));
  return resp.container_id();
}

absl::Status CriClient::StartContainer(std::string_view container_id) {
  cri::StartContainerRequest req;
  req.set_container_id(std::string(container_id));
  return Unary(*runtime_, &RuntimeStub::StartContainer, "StartContainer", req, timeout_).status();
}

absl::Status CriClient::StopContainer(std::string_view container_id, int64_t timeout_s) {
  cri::StopContainerRequest req;
  req.set_container_id(std::string(container_id));
  req.set_timeout(timeout_s);
  return Unary(*runtime_, &RuntimeStub::StopContainer, "StopContainer", req,
               timeout_ + absl::Seconds(timeout_s))
      .status();
}

absl::Status CriClient::RemoveContainer(std::string_view container_id) {
  cri::RemoveContainerRequest req;
  req.set_container_id(std::string(container_id));
  return Unary(*runtime_, &RuntimeStub::RemoveContainer, "RemoveContainer", req, timeout_).status();
}

absl::StatusOr<std::string> CriClient::ContainerStatus(std::string_view container_id,
                                                       bool verbose) {
  cri::ContainerStatusRequest req;
  req.set_container_id(std::string(container_id));
  req.set_verbose(verbose);
  ASSIGN_OR_RETURN(
      auto resp, Unary(*runtime_, &RuntimeStub::ContainerStatus, "ContainerStatus", req, timeout_));
  return ProtoToJson(resp);
}

absl::StatusOr<std::string> CriClient::ListContainers(std::string_view filter_json) {
  cri::ListContainersRequest req;
  if (!filter_json.empty()) RETURN_IF_ERROR(JsonToProto(filter_json, req.mutable_filter()));
  ASSIGN_OR_RETURN(auto resp,
                   Unary(*runtime_, &RuntimeStub::ListContainers, "ListContainers", req, timeout_));
  return ProtoToJson(resp);
}

absl::StatusOr<std::string> CriClient::ContainerStats(std::string_view container_id) {
  cri::ContainerStatsRequest req;
  req.set_container_id(std::string(container_id));
  ASSIGN_OR_RETURN(auto resp,
                   Unary(*runtime_, &RuntimeStub::ContainerStats, "ContainerStats", req, timeout_));
  return ProtoToJson(resp);
}

absl::StatusOr<ExecSyncResult> CriClient::ExecSync(std::string_view container_id,
                                                   const std::vector<std::string>& cmd,
                                                   absl::Duration timeout) {
  cri::ExecSyncRequest req;
  req.set_container_id(std::string(container_id));
  for (const auto& a : cmd) req.add_cmd(a);
  bool bounded = timeout != absl::InfiniteDuration() && timeout > absl::ZeroDuration();
  req.set_timeout(
      bounded ? std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(timeout, absl::Seconds(1))))
              : 0);
  absl::Duration rpc_timeout = bounded ? timeout + absl::Seconds(30) : absl::Hours(24);
  ASSIGN_OR_RETURN(auto resp,
                   Unary(*runtime_, &RuntimeStub::ExecSync, "ExecSync", req, rpc_timeout));
  return ExecSyncResult{resp.stdout(), resp.stderr(), resp.exit_code()};
}

absl::StatusOr<std::string> CriClient::PullImage(std::string_view image) {
  cri::PullImageRequest req;
  req.mutable_image()->set_image(std::string(image));
  ASSIGN_OR_RETURN(auto resp, Unary(*images_, &ImageStub::PullImage, "PullImage", req, timeout_));
  return resp.image_ref();
}

absl::StatusOr<std::string> CriClient::Call(std::string_view method,
                                            std::string_view request_json) {
  const auto& methods = Methods();
  auto it = methods.find(method);
  if (it == methods.end()) {
    return absl::NotFoundError(absl::StrFormat("CRI has no unary method \"%s\"", method));
  }
  return it->second(*this, request_json);
}

std::vector<std::string> CriClient::MethodNames() {
  std::vector<std::string> names;
  for (const auto& [name, fn] : Methods()) names.push_back(name);
  return names;
}

const std::map<std::string, CriClient::JsonCall, std::less<>>& CriClient::Methods() {
  static const auto* table = [] {
    auto* t = new std::map<std::string, JsonCall, std::less<>>();
    auto runtime = [](CriClient& c) -> RuntimeStub& { return *c.runtime_; };
    auto images = [](CriClient& c) -> ImageStub& { return *c.images_; };
#define KUASAR_CRI_RUNTIME(m) (*t)[#m] = JsonMethod(runtime, &RuntimeStub::m, #m)
#define KUASAR_CRI_IMAGE(m) (*t)[#m] = JsonMethod(images, &ImageStub::m, #m)
    KUASAR_CRI_RUNTIME(Version);
    KUASAR_CRI_RUNTIME(RunPodSandbox);
    KUASAR_CRI_RUNTIME(StopPodSandbox);
    KUASAR_CRI_RUNTIME(RemovePodSandbox);
    KUASAR_CRI_RUNTIME(PodSandboxStatus);
    KUASAR_CRI_RUNTIME(ListPodSandbox);
    KUASAR_CRI_RUNTIME(CreateContainer);
    KUASAR_CRI_RUNTIME(StartContainer);
    KUASAR_CRI_RUNTIME(StopContainer);
    KUASAR_CRI_RUNTIME(RemoveContainer);
    KUASAR_CRI_RUNTIME(ListContainers);
    KUASAR_CRI_RUNTIME(ContainerStatus);
    KUASAR_CRI_RUNTIME(UpdateContainerResources);
    KUASAR_CRI_RUNTIME(ReopenContainerLog);
    KUASAR_CRI_RUNTIME(ExecSync);
    KUASAR_CRI_RUNTIME(Exec);
    KUASAR_CRI_RUNTIME(Attach);
    KUASAR_CRI_RUNTIME(PortForward);
    KUASAR_CRI_RUNTIME(ContainerStats);
    KUASAR_CRI_RUNTIME(ListContainerStats);
    KUASAR_CRI_RUNTIME(PodSandboxStats);
    KUASAR_CRI_RUNTIME(ListPodSandboxStats);
    KUASAR_CRI_RUNTIME(UpdateRuntimeConfig);
    KUASAR_CRI_RUNTIME(Status);
    KUASAR_CRI_RUNTIME(RuntimeConfig);
    KUASAR_CRI_IMAGE(ListImages);
    KUASAR_CRI_IMAGE(ImageStatus);
    KUASAR_CRI_IMAGE(PullImage);
    KUASAR_CRI_IMAGE(RemoveImage);
    KUASAR_CRI_IMAGE(ImageFsInfo);
#undef KUASAR_CRI_RUNTIME
#undef KUASAR_CRI_IMAGE
    return t;
  }();
  return *table;
}

}  // namespace kuasar::python
