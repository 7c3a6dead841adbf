// Protobuf messages as JSON text: the form in which the Python module passes requests and
// responses (Python turns it into dicts with the json module). Proto field names
// (snake_case) are printed and fields at their default value are included; parsing also
// accepts the camelCase JSON names and rejects unknown fields. Thread-safe.
#pragma once

#include <google/protobuf/message.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kuasar::python {

absl::StatusOr<std::string> ProtoToJson(const google::protobuf::Message& message);
// INVALID_ARGUMENT naming the message type when `json` does not fit it.
absl::Status JsonToProto(std::string_view json, google::protobuf::Message* message);

}  // namespace kuasar::python
