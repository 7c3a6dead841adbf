#include "sim/firecracker/fc_body.h"

#include <cctype>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace kuasar::sim::fc {

using nlohmann::json;

namespace {

absl::Status Serde(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrFormat(
      "An error occurred when deserializing the json body of a request: %s.", what));
}

std::string Describe(const json& v) {
  if (v.is_string()) return absl::StrFormat("string %s", v.dump());
  if (v.is_boolean()) return absl::StrFormat("boolean `%s`", v.dump());
  if (v.is_number_integer()) return absl::StrFormat("integer `%s`", v.dump());
  if (v.is_number()) return absl::StrFormat("floating point `%s`", v.dump());
  if (v.is_array()) return "sequence";
  if (v.is_null()) return "null";
  return "map";
}

std::string Quoted(const std::vector<const char*>& names) {
  std::vector<std::string> q;
  for (const char* n : names) q.push_back(absl::StrFormat("`%s`", n));
  return absl::StrJoin(q, ", ");
}

}  // namespace

absl::StatusOr<json> ParseBody(std::string_view body, std::initializer_list<Field> fields) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return Serde("expected value at line 1 column 1");
  if (!j.is_object())
    return Serde(absl::StrFormat("invalid type: %s, expected a map", Describe(j)));
  std::vector<const char*> names;
  for (const Field& f : fields) names.push_back(f.name);
  for (const auto& [k, v] : j.items()) {
    const Field* field = nullptr;
    for (const Field& f : fields) {
      if (k == f.name) field = &f;
    }
    if (field == nullptr) {
      std::vector<std::string> q;
      for (const char* n : names) q.push_back(absl::StrFormat("`%s`", n));
      return Serde(
          absl::StrFormat("unknown field `%s`, expected one of %s", k, absl::StrJoin(q, ", ")));
    }
    bool ok = true;
    const char* expected = "";
    switch (field->type) {
      case FieldType::kString:
        ok = v.is_string();
        expected = "a string";
        break;
      case FieldType::kBool:
        ok = v.is_boolean();
        expected = "a boolean";
        break;
      case FieldType::kUint:
        ok = v.is_number_unsigned();
        expected = "u64";
        break;
      case FieldType::kObject:
        ok = v.is_object() || v.is_null();
        expected = "a map";
        break;
      case FieldType::kAny:
        break;
    }
    if (!ok) return Serde(absl::StrFormat("invalid type: %s, expected %s", Describe(v), expected));
    if (field->variants.size() > 0) {
      bool found = false;
      for (const char* variant : field->variants) found = found || v.get<std::string>() == variant;
      if (!found) {
        return Serde(absl::StrFormat("unknown variant `%s`, expected one of %s",
                                     v.get<std::string>(), Quoted(field->variants)));
      }
    }
  }
  for (const Field& f : fields) {
    if (f.required && !j.contains(f.name)) {
      return Serde(absl::StrFormat("missing field `%s`", f.name));
    }
  }
  return j;
}

absl::StatusOr<json> ParseBootSource(std::string_view body) {
  return ParseBody(body, {{"kernel_image_path", FieldType::kString, true},
                          {"boot_args", FieldType::kString},
                          {"initrd_path", FieldType::kString}});
}

absl::StatusOr<json> ParseDrive(std::string_view body) {
  return ParseBody(body, {{"drive_id", FieldType::kString, true},
                          {"is_root_device", FieldType::kBool, true},
                          {"partuuid", FieldType::kString},
                          {"cache_type", FieldType::kString, false, {"Unsafe", "Writeback"}},
                          {"is_read_only", FieldType::kBool},
                          {"path_on_host", FieldType::kString},
                          {"rate_limiter", FieldType::kObject},
                          {"io_engine", FieldType::kString, false, {"Sync", "Async"}},
                          {"socket", FieldType::kString}});
}

absl::StatusOr<json> ParseMachineConfig(std::string_view body, bool partial) {
  return ParseBody(body,
                   {{"vcpu_count", FieldType::kUint, !partial},
                    {"mem_size_mib", FieldType::kUint, !partial},
                    {"smt", FieldType::kBool},
                    {"track_dirty_pages", FieldType::kBool},
                    {"cpu_template",
                     FieldType::kString,
                     false,
                     {"C3", "T2", "T2S", "T2CL", "T2A", "V1N1", "None"}},
                    {"huge_pages", FieldType::kString, false, {"None", "Transparent", "2M"}}});
}

absl::StatusOr<json> ParseNetworkInterface(std::string_view body) {
  return ParseBody(body, {{"iface_id", FieldType::kString, true},
                          {"host_dev_name", FieldType::kString, true},
                          {"guest_mac", FieldType::kString},
                          {"mtu", FieldType::kUint},
                          {"rx_rate_limiter", FieldType::kObject},
                          {"tx_rate_limiter", FieldType::kObject}});
}

absl::StatusOr<json> ParseVsock(std::string_view body) {
  return ParseBody(body, {{"guest_cid", FieldType::kUint, true},
                          {"uds_path", FieldType::kString, true},
                          {"vsock_id", FieldType::kString}});
}

absl::StatusOr<json> ParseAction(std::string_view body) {
  return ParseBody(body, {{"action_type",
                           FieldType::kString,
                           true,
                           {"FlushMetrics", "InstanceStart", "SendCtrlAltDel"}}});
}

absl::StatusOr<json> ParseVmState(std::string_view body) {
  return ParseBody(body, {{"state", FieldType::kString, true, {"Paused", "Resumed"}}});
}

absl::Status CheckId(std::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError("The ID cannot be empty.");
  for (char c : id) {
    if (c != '_' && !std::isalnum(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          "API Resource IDs can only contain alphanumeric characters and underscores.");
    }
  }
  return absl::OkStatus();
}

}  // namespace kuasar::sim::fc
