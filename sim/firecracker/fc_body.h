// Firecracker request bodies, checked as its serde structs check them (deny_unknown_fields,
// required fields, types) with serde's wording, so a bad body gets the fault_message the
// real API gives ("An error occurred when deserializing the json body of a request:
// missing field `kernel_image_path`."). Pure functions; thread-safe.
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace kuasar::sim::fc {

enum class FieldType { kString, kBool, kUint, kObject, kAny };

struct Field {
  const char* name;
  FieldType type;
  bool required = false;
  std::vector<const char*> variants = {};  // an enum: one of these strings
};

// Parses and checks `body` against `fields`; errors are the full fault message.
absl::StatusOr<nlohmann::json> ParseBody(std::string_view body,
                                         std::initializer_list<Field> fields);

// The PUT bodies Firecracker's API takes (swagger definitions).
absl::StatusOr<nlohmann::json> ParseBootSource(std::string_view body);
absl::StatusOr<nlohmann::json> ParseDrive(std::string_view body);
absl::StatusOr<nlohmann::json> ParseMachineConfig(std::string_view body, bool partial);
absl::StatusOr<nlohmann::json> ParseNetworkInterface(std::string_view body);
absl::StatusOr<nlohmann::json> ParseVsock(std::string_view body);
absl::StatusOr<nlohmann::json> ParseAction(std::string_view body);
absl::StatusOr<nlohmann::json> ParseVmState(std::string_view body);

// API resource ids: non-empty, alphanumeric or '_' (parsed_request.rs checked_id).
absl::Status CheckId(std::string_view id);

}  // namespace kuasar::sim::fc
