// The ttrpc envelope on the wire: absl::Status <-> google.rpc.Status (absl::StatusCode
// uses the gRPC canonical numbers, so codes map 1:1; an unknown number becomes UNKNOWN),
// and protobuf messages encoded straight into frames. Stateless; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/ttrpc/frame.h"

namespace google::protobuf {
class MessageLite;
}
namespace google::rpc {
class Status;
}

namespace kuasar::ttrpc {

void StatusToProto(const absl::Status& status, google::rpc::Status* out);
absl::Status StatusFromProto(const google::rpc::Status& proto);

// A copy of `status` that shares no reference-counted state with it. Used wherever a
// status crosses threads: sharing is correct, but Debian's libabsl is not built with
// TSan, so the reference count's synchronisation is invisible to it.
absl::Status IsolatedCopy(const absl::Status& status);

// Go ttrpc's status for a message over kMaxMessageSize (same code and text).
absl::Status OversizedMessageStatus(std::size_t length);

// `message` serialized into a frame; RESOURCE_EXHAUSTED if over kMaxMessageSize.
absl::StatusOr<std::string> EncodeMessageFrame(std::uint32_t stream_id, MessageType type,
                                               std::uint8_t flags,
                                               const google::protobuf::MessageLite& message);

// A ttrpc.Response frame: `status`, plus `payload` when OK. A response too large for a
// frame becomes RESOURCE_EXHAUSTED (Go ttrpc would drop the connection instead).
std::string EncodeResponseFrame(std::uint32_t stream_id, const absl::Status& status,
                                std::string payload = {});

}  // namespace kuasar::ttrpc
