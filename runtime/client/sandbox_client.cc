#include "runtime/client/sandbox_client.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>

#include "absl/strings/str_cat.h"
#include "runtime/server/proto_convert.h"

namespace kuasar {

namespace sbapi = containerd::services::sandbox::v1;

namespace {

void SetDeadline(grpc::ClientContext* ctx, absl::Duration timeout) {
  if (timeout != absl::InfiniteDuration()) {
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
}

}  // namespace

SandboxClient::SandboxClient(const std::string& socket_path, std::string sandboxer)
    : channel_(grpc::CreateChannel(absl::StrCat("unix:", socket_path),
                                   grpc::InsecureChannelCredentials())),
      stub_(sbapi::Controller::NewStub(channel_)),
      sandboxer_(std::move(sandboxer)) {}

bool SandboxClient::WaitReady(absl::Duration timeout) {
  return channel_->WaitForConnected(absl::ToChronoTime(absl::Now() + timeout));
}

absl::Status SandboxClient::Create(const sbapi::ControllerCreateRequest& req,
                                   absl::Duration timeout) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, timeout);
  sbapi::ControllerCreateResponse resp;
  sbapi::ControllerCreateRequest copy = req;
  if (copy.sandboxer().empty()) copy.set_sandboxer(sandboxer_);
  return FromGrpcStatus(stub_->Create(&ctx, copy, &resp));
}

absl::StatusOr<sbapi::ControllerStartResponse> SandboxClient::Start(std::string_view id,
                                                                    absl::Duration timeout) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, timeout);
  sbapi::ControllerStartRequest req;
  req.set_sandbox_id(std::string(id));
  req.set_sandboxer(sandboxer_);
  sbapi::ControllerStartResponse resp;
  if (auto st = FromGrpcStatus(stub_->Start(&ctx, req, &resp)); !st.ok()) return st;
  return resp;
}

absl::StatusOr<PlatformInfo> SandboxClient::Platform(std::string_view id) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(10));
  sbapi::ControllerPlatformRequest req;
  req.set_sandbox_id(std::string(id));
  req.set_sandboxer(sandboxer_);
  sbapi::ControllerPlatformResponse resp;
  if (auto st = FromGrpcStatus(stub_->Platform(&ctx, req, &resp)); !st.ok()) return st;
  return PlatformInfo{resp.platform().os(), resp.platform().architecture(),
                      resp.platform().variant()};
}

absl::Status SandboxClient::Stop(std::string_view id, uint32_t timeout_secs) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(timeout_secs + 60));
  sbapi::ControllerStopRequest req;
  req.set_sandbox_id(std::string(id));
  req.set_timeout_secs(timeout_secs);
  req.set_sandboxer(sandboxer_);
  sbapi::ControllerStopResponse resp;
  return FromGrpcStatus(stub_->Stop(&ctx, req, &resp));
}

absl::StatusOr<sbapi::ControllerWaitResponse> SandboxClient::Wait(std::string_view id,
                                                                  absl::Duration timeout) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, timeout);
  sbapi::ControllerWaitRequest req;
  req.set_sandbox_id(std::string(id));
  req.set_sandboxer(sandboxer_);
  sbapi::ControllerWaitResponse resp;
  if (auto st = FromGrpcStatus(stub_->Wait(&ctx, req, &resp)); !st.ok()) return st;
  return resp;
}

absl::StatusOr<sbapi::ControllerStatusResponse> SandboxClient::StatusProto(std::string_view id,
                                                                          bool verbose) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(10));
  sbapi::ControllerStatusRequest req;
  req.set_sandbox_id(std::string(id));
  req.set_verbose(verbose);
  req.set_sandboxer(sandboxer_);
  sbapi::ControllerStatusResponse resp;
  if (auto st = FromGrpcStatus(stub_->Status(&ctx, req, &resp)); !st.ok()) return st;
  return resp;
}

absl::StatusOr<std::string> SandboxClient::Status(std::string_view id, bool verbose) {
  auto resp = StatusProto(id, verbose);
  if (!resp.ok()) return resp.status();
  std::string json;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.preserve_proto_field_names = true;
  auto st = google::protobuf::util::MessageToJsonString(*resp, &json, opts);
  if (!st.ok()) return absl::InternalError(st.ToString());
  return json;
}

absl::Status SandboxClient::Shutdown(std::string_view id) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(120));
  sbapi::ControllerShutdownRequest req;
  req.set_sandbox_id(std::string(id));
  req.set_sandboxer(sandboxer_);
  sbapi::ControllerShutdownResponse resp;
  return FromGrpcStatus(stub_->Shutdown(&ctx, req, &resp));
}

absl::StatusOr<sbapi::ControllerMetricsResponse> SandboxClient::Metrics(std::string_view id) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(30));
  sbapi::ControllerMetricsRequest req;
  req.set_sandbox_id(std::string(id));
  req.set_sandboxer(sandboxer_);
  sbapi::ControllerMetricsResponse resp;
  if (auto st = FromGrpcStatus(stub_->Metrics(&ctx, req, &resp)); !st.ok()) return st;
  return resp;
}

}  // namespace kuasar
