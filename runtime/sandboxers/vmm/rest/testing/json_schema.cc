#include "runtime/sandboxers/vmm/rest/testing/json_schema.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_format.h"

namespace kuasar::vmm::testing {

using nlohmann::json;

namespace {

absl::Status Bad(const std::string& where, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrFormat("%s: %s", where, what));
}

bool HasType(const json& v, const std::string& type) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "boolean") return v.is_boolean();
  if (type == "integer") return v.is_number_integer();
  if (type == "number") return v.is_number();
  return false;
}

}  // namespace

absl::StatusOr<JsonSchemaSet> JsonSchemaSet::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrFormat("cannot read %s", path));
  std::stringstream text;
  text << in.rdbuf();
  json j = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(path + " is not JSON");
  return FromJson(std::move(j));
}

absl::StatusOr<JsonSchemaSet> JsonSchemaSet::FromJson(json schemas) {
  if (!schemas.is_object() || !schemas.contains("definitions") ||
      !schemas["definitions"].is_object()) {
    return absl::InvalidArgumentError("schema file needs a \"definitions\" object");
  }
  JsonSchemaSet set;
  set.definitions_ = std::move(schemas["definitions"]);
  return set;
}

bool JsonSchemaSet::Has(std::string_view name) const {
  return definitions_.contains(std::string(name));
}

absl::Status JsonSchemaSet::Validate(std::string_view name, const json& value) const {
  if (!Has(name)) return absl::NotFoundError(absl::StrFormat("no definition %s", name));
  return Check(definitions_[std::string(name)], value, std::string(name), 0);
}

absl::Status JsonSchemaSet::Check(const json& schema, const json& value, const std::string& where,
                                  int depth) const {
  if (depth > 32) return Bad(where, "schema nesting too deep");
  if (schema.contains("$ref")) {
    std::string ref = schema["$ref"].get<std::string>();
    for (const char* prefix : {"#/definitions/", "#/components/schemas/"}) {
      if (ref.rfind(prefix, 0) == 0) {
        std::string name = ref.substr(std::string(prefix).size());
        if (!Has(name)) return Bad(where, "unresolved $ref " + ref);
        return Check(definitions_[name], value, where, depth + 1);
      }
    }
    return Bad(where, "unsupported $ref " + ref);
  }
  if (schema.contains("type") && !HasType(value, schema["type"].get<std::string>())) {
    return Bad(where, absl::StrFormat("expected %s, got %s", schema["type"].get<std::string>(),
                                      value.dump()));
  }
  if (schema.contains("enum")) {
    bool found = false;
    for (const json& e : schema["enum"]) found = found || e == value;
    if (!found)
      return Bad(where,
                 absl::StrFormat("%s is not one of %s", value.dump(), schema["enum"].dump()));
  }
  if (value.is_number() && schema.contains("minimum") &&
      value.get<double>() < schema["minimum"].get<double>()) {
    return Bad(where,
               absl::StrFormat("%s is below minimum %s", value.dump(), schema["minimum"].dump()));
  }
  if (value.is_number() && schema.contains("maximum") &&
      value.get<double>() > schema["maximum"].get<double>()) {
    return Bad(where,
               absl::StrFormat("%s is above maximum %s", value.dump(), schema["maximum"].dump()));
  }
  if (value.is_object()) {
    for (const json& r : schema.value("required", json::array())) {
      if (!value.contains(r.get<std::string>())) {
        return Bad(where, "missing required property " + r.get<std::string>());
      }
    }
    const json props = schema.value("properties", json::object());
    bool additional = schema.contains("additionalProperties");
    for (const auto& [key, v] : value.items()) {
      std::string at = where + "." + key;
      if (props.contains(key)) {
        if (absl::Status st = Check(props[key], v, at, depth + 1); !st.ok()) return st;
      } else if (additional && schema["additionalProperties"].is_object()) {
        if (absl::Status st = Check(schema["additionalProperties"], v, at, depth + 1); !st.ok()) {
          return st;
        }
      } else if (!(additional && schema["additionalProperties"] == true)) {
        return Bad(at, "property not in the schema");
      }
    }
  }
  if (value.is_array() && schema.contains("items")) {
    for (size_t i = 0; i < value.size(); ++i) {
      absl::Status st =
          Check(schema["items"], value[i], absl::StrFormat("%s[%d]", where, i), depth + 1);
      if (!st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

}  // namespace kuasar::vmm::testing
