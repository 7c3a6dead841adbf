// The schema checker itself: each rule it claims to enforce rejects a value.
#include "runtime/sandboxers/vmm/rest/testing/json_schema.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/base/status_matchers.h"

namespace kuasar::vmm::testing {
namespace {

using ::kuasar::testing::StatusIs;
using nlohmann::json;
using ::testing::HasSubstr;

JsonSchemaSet Set() {
  auto s = JsonSchemaSet::FromJson(json::parse(R"({"definitions": {
    "Thing": {"type": "object", "required": ["id"],
              "properties": {"id": {"type": "string"}, "n": {"type": "integer", "minimum": 3, "maximum": 9},
                             "mode": {"type": "string", "enum": ["A", "B"]},
                             "items": {"type": "array", "items": {"$ref": "#/definitions/Item"}},
                             "free": {"type": "object", "additionalProperties": true}}},
    "Item": {"type": "object", "properties": {"on": {"type": "boolean"}}}}})"));
  EXPECT_OK(s);
  return *s;
}

TEST(JsonSchemaTest, AcceptsAndRejects) {
  JsonSchemaSet s = Set();
  EXPECT_OK(s.Validate("Thing", json{{"id", "x"},
                                     {"n", 3},
                                     {"mode", "B"},
                                     {"items", json::array({json{{"on", true}}})},
                                     {"free", {{"anything", 1}}}}));
  auto bad = [&](json v, const char* what) {
    EXPECT_THAT(s.Validate("Thing", v),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(what)))
        << v.dump();
  };
  bad(json{{"n", 4}}, "missing required property id");
  bad(json{{"id", 1}}, "Thing.id: expected string");
  bad(json{{"id", "x"}, {"n", 2}}, "below minimum");
  bad(json{{"id", "x"}, {"n", 10}}, "above maximum");
  bad(json{{"id", "x"}, {"n", 4.5}}, "expected integer");
  bad(json{{"id", "x"}, {"mode", "C"}}, "is not one of");
  bad(json{{"id", "x"}, {"items", json::array({json{{"on", 1}}})}}, "Thing.items[0].on");
  bad(json{{"id", "x"}, {"extra", 1}}, "Thing.extra: property not in the schema");
  EXPECT_THAT(s.Validate("Nope", json::object()), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace kuasar::vmm::testing
