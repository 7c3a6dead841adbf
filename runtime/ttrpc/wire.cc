#include "runtime/ttrpc/wire.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/str_format.h"
#include "google/rpc/status.pb.h"
#include "ttrpc/request.pb.h"

namespace kuasar::ttrpc {

void StatusToProto(const absl::Status& status, google::rpc::Status* out) {
  out->Clear();
  out->set_code(static_cast<int>(status.code()));
  absl::string_view msg = status.message();
  out->set_message(std::string(msg.data(), msg.size()));
}

absl::Status StatusFromProto(const google::rpc::Status& proto) {
  int code = proto.code();
  if (code == 0) return absl::OkStatus();
  if (code < 0 || code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    return absl::UnknownError(
        absl::StrFormat("ttrpc: status code %d: %s", code, proto.message()));
  }
  return absl::Status(static_cast<absl::StatusCode>(code), proto.message());
}

absl::Status IsolatedCopy(const absl::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::string_view msg = status.message();
  absl::Status copy(status.code(), std::string(msg.data(), msg.size()));
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    copy.SetPayload(std::string(url.data(), url.size()), absl::Cord(std::string(payload)));
  });
  return copy;
}

absl::Status OversizedMessageStatus(std::size_t length) {
  return absl::ResourceExhaustedError(absl::StrFormat(
      "message length %d exceed maximum message size of %d", length, kMaxMessageSize));
}

absl::StatusOr<std::string> EncodeMessageFrame(std::uint32_t stream_id, MessageType type,
                                               std::uint8_t flags,
                                               const google::protobuf::MessageLite& message) {
  std::size_t size = message.ByteSizeLong();
  if (size > kMaxMessageSize) return OversizedMessageStatus(size);
  std::string frame(kFrameHeaderSize + size, '\0');
  EncodeFrameHeader({static_cast<std::uint32_t>(size), stream_id,
                     static_cast<std::uint8_t>(type), flags},
                    frame.data());
  message.SerializeWithCachedSizesToArray(
      reinterpret_cast<std::uint8_t*>(frame.data() + kFrameHeaderSize));
  return frame;
}

std::string EncodeResponseFrame(std::uint32_t stream_id, const absl::Status& status,
                                std::string payload) {
  ::ttrpc::Response response;
  StatusToProto(status, response.mutable_status());
  if (status.ok()) response.set_payload(std::move(payload));
  absl::StatusOr<std::string> frame =
      EncodeMessageFrame(stream_id, MessageType::kResponse, 0, response);
  if (frame.ok()) return *std::move(frame);
  ::ttrpc::Response small;
  StatusToProto(frame.status(), small.mutable_status());
  return *EncodeMessageFrame(stream_id, MessageType::kResponse, 0, small);
}

}  // namespace kuasar::ttrpc
