#include "sim/common/fault_plan.h"

#include <gtest/gtest.h>

#include <csignal>

#include "runtime/base/status_matchers.h"

namespace kuasar::sim {
namespace {

using ::kuasar::testing::StatusIs;
using nlohmann::json;
using ::testing::HasSubstr;

TEST(FaultPlanTest, AppliesAndDescribes) {
  FaultPlan plan;
  ASSERT_OK(ApplyFaultsJson(json::parse(R"({
      "refuse": [{"method": "PUT", "path": "/api/v1/vm.boot", "status": 503, "times": 1}],
      "slow": [{"path": "*", "delay_ms": 20}],
      "hang_boot": true, "crash_after_ms": 500, "crash_signal": "SIGSEGV",
      "kill_agent_after_ms": 0, "drop_channel_after_ms": 10})"),
                            &plan));
  EXPECT_TRUE(plan.hang_boot);
  EXPECT_EQ(plan.crash_signal, SIGSEGV);
  EXPECT_EQ(plan.kill_agent_after_ms, 0);
  json d = FaultsToJson(plan);
  EXPECT_EQ(d["crash_signal"], "SIGSEGV");
  EXPECT_EQ(d["refuse"][0]["status"], 503);
}

TEST(FaultPlanTest, RefusalsCountDown) {
  FaultPlan plan;
  ASSERT_OK(ApplyFaultsJson(
      json::parse(R"({"refuse": [{"method": "PUT", "path": "/x", "times": 2}]})"), &plan));
  EXPECT_EQ(plan.TakeRefusal("GET", "/x"), nullptr);
  EXPECT_NE(plan.TakeRefusal("PUT", "/x"), nullptr);
  EXPECT_NE(plan.TakeRefusal("PUT", "/x"), nullptr);
  EXPECT_EQ(plan.TakeRefusal("PUT", "/x"), nullptr);
}

TEST(FaultPlanTest, QmpCommandsMatchAnyMethod) {
  FaultPlan plan;
  ASSERT_OK(ApplyFaultsJson(json::parse(R"({"refuse": [{"command": "cont"}],
                                            "slow": [{"command": "cont", "delay_ms": 5},
                                                     {"delay_ms": 7}]})"),
                            &plan));
  EXPECT_NE(plan.TakeRefusal("", "cont"), nullptr);
  EXPECT_EQ(plan.TakeRefusal("", "stop"), nullptr);
  EXPECT_EQ(plan.TakeDelayMs("", "cont"), 12);
  EXPECT_EQ(plan.TakeDelayMs("", "stop"), 7);
}

TEST(FaultPlanTest, ClearResetsFirst) {
  FaultPlan plan;
  plan.hang_boot = true;
  ASSERT_OK(ApplyFaultsJson(json::parse(R"({"clear": true, "crash_after_ms": 3})"), &plan));
  EXPECT_FALSE(plan.hang_boot);
  EXPECT_EQ(plan.crash_after_ms, 3);
}

TEST(FaultPlanTest, ErrorsNameTheKey) {
  FaultPlan plan;
  EXPECT_THAT(ApplyFaultsJson(json::parse(R"({"hang": true})"), &plan),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("faults.hang: unknown key")));
  EXPECT_THAT(ApplyFaultsJson(json::parse(R"({"refuse": [{"status": 42}]})"), &plan),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("faults.refuse.status")));
  EXPECT_THAT(ApplyFaultsJson(json::parse(R"({"crash_signal": "SIGNOPE"})"), &plan),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("crash_signal")));
  EXPECT_THAT(ApplyFaultsJson(json::parse("[]"), &plan),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // A failed update leaves the plan as it was.
  EXPECT_FALSE(plan.hang_boot);
}

TEST(FaultPlanTest, TomlTablesConvert) {
  toml::table t = toml::parse(R"(
    hang_boot = true
    crash_signal = 11
    [[refuse]]
    method = "PUT"
    path = "/vsock"
  )");
  FaultPlan plan;
  ASSERT_OK(ApplyFaultsJson(TomlToJson(t), &plan));
  EXPECT_TRUE(plan.hang_boot);
  EXPECT_EQ(plan.crash_signal, 11);
  ASSERT_EQ(plan.refuse.size(), 1u);
  EXPECT_EQ(plan.refuse[0].path, "/vsock");
}

}  // namespace
}  // namespace kuasar::sim
