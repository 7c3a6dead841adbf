// JsonSchemaSet: a checker for the subset of JSON Schema that OpenAPI 3 (Cloud Hypervisor)
// and Swagger 2 (Firecracker) definitions use: type, required, properties, items, enum,
// minimum, maximum, $ref ("#/definitions/Name"). Stricter than the specs in one way on
// purpose: a property the definition does not declare is an error (the VMMs' serde
// structs reject or ignore them; either way it is a bug in the driver). Tests only.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kuasar::vmm::testing {

class JsonSchemaSet {
 public:
  // A file {"source": "...", "definitions": {"Name": {schema}, ...}}.
  static absl::StatusOr<JsonSchemaSet> Load(const std::string& path);
  static absl::StatusOr<JsonSchemaSet> FromJson(nlohmann::json schemas);

  // INVALID_ARGUMENT naming the JSON path ("VmConfig.cpus.boot_vcpus: below minimum 1").
  absl::Status Validate(std::string_view definition, const nlohmann::json& value) const;
  bool Has(std::string_view definition) const;

 private:
  absl::Status Check(const nlohmann::json& schema, const nlohmann::json& value,
                     const std::string& where, int depth) const;
  nlohmann::json definitions_;
};

}  // namespace kuasar::vmm::testing
