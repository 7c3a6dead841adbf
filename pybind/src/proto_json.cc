#include "pybind/src/proto_json.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_format.h"

namespace kuasar::python {

absl::StatusOr<std::string> ProtoToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  auto st = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!st.ok()) {
    return absl::InternalError(
        absl::StrFormat("%s as JSON: %s", message.GetTypeName(),
                        std::string(st.message().data(), st.message().size())));
  }
  return out;
}

absl::Status JsonToProto(std::string_view json, google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto st = google::protobuf::util::JsonStringToMessage(std::string(json), message, options);
  if (!st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("not a valid %s: %s", message->GetTypeName(),
                        std::string(st.message().data(), st.message().size())));
  }
  return absl::OkStatus();
}

}  // namespace kuasar::python
