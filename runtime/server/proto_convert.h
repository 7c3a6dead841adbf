// Translations at the protocol boundary: absl::Status <-> gRPC status codes (the same
// numbers, which ttrpc also uses), absl::Time <-> google.protobuf.Timestamp, mounts.
#pragma once

#include <google/protobuf/timestamp.pb.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "containerd/services/sandbox/v1/sandbox.pb.h"
#include "containerd/types/mount.pb.h"
#include "runtime/core/sandbox_controller.h"
#include "runtime/core/sandbox_record.h"

namespace kuasar {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// The Unix epoch (our "never") leaves the timestamp unset.
void ToTimestamp(absl::Time t, google::protobuf::Timestamp* out);
absl::Time FromTimestamp(const google::protobuf::Timestamp& ts);

MountSpec FromProto(const containerd::types::Mount& m);

// containerd's Controller.Create request as the controller takes it.
CreateSandboxRequest ToCreateRequest(
    const containerd::services::sandbox::v1::ControllerCreateRequest& req);

}  // namespace kuasar
