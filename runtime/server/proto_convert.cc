#include "runtime/server/proto_convert.h"

namespace kuasar {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbers.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

void ToTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  if (t == absl::UnixEpoch()) return;
  int64_t ns = absl::ToUnixNanos(t);
  out->set_seconds(ns / 1000000000);
  out->set_nanos(static_cast<int32_t>(ns % 1000000000));
}

absl::Time FromTimestamp(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

MountSpec FromProto(const containerd::types::Mount& m) {
  return MountSpec{m.type(), m.source(), m.target(), {m.options().begin(), m.options().end()}};
}

CreateSandboxRequest ToCreateRequest(
    const containerd::services::sandbox::v1::ControllerCreateRequest& req) {
  CreateSandboxRequest c;
  c.id = req.sandbox_id();
  c.sandboxer = req.sandboxer();
  for (const auto& m : req.rootfs()) c.rootfs.push_back(FromProto(m));
  c.netns_path = req.netns_path();
  c.annotations = {req.annotations().begin(), req.annotations().end()};
  if (req.has_sandbox()) {
    c.labels = {req.sandbox().labels().begin(), req.sandbox().labels().end()};
    if (req.sandbox().has_spec()) {
      c.spec_type_url = req.sandbox().spec().type_url();
      c.spec_json = req.sandbox().spec().value();
    }
  }
  if (req.has_options()) {
    c.options_type_url = req.options().type_url();
    c.options_bytes = req.options().value();
  }
  return c;
}

}  // namespace kuasar
