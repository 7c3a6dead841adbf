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

}  // namespace kuasar
