// The QMP readers are total: whatever shape a VMM's reply or event has, they answer with
// the fallback and never throw. The wrong-type cases below threw out of json::value()
// (and so out of an io-thread callback) before qmp_response_fuzzer made them readers.
#include "runtime/sandboxers/vmm/common/qmp_replies.h"

#include <sys/socket.h>

#include <atomic>
#include <limits>

#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "runtime/base/status_matchers.h"
#include "runtime/sandboxers/vmm/common/testing/scripted_qmp_server.h"

namespace kuasar::vmm {
namespace {

using nlohmann::json;

TEST(QmpRepliesTest, RunStatusOfAnyShape) {
  EXPECT_EQ(QmpRunStatus(json{{"status", "running"}, {"running", true}}), "running");
  EXPECT_EQ(QmpRunStatus(json{{"status", 7}}), "unknown");
  EXPECT_EQ(QmpRunStatus(json(5)), "unknown");
  EXPECT_EQ(QmpRunStatus(json::array({"running"})), "unknown");
  EXPECT_EQ(QmpRunStatus(json()), "unknown");
}

TEST(QmpRepliesTest, ChardevFrontendOpen) {
  json reply = json::array({{{"label", "serial0"}, {"frontend-open", true}},
                            {{"label", "agent"}, {"frontend-open", true}}});
  EXPECT_TRUE(QmpChardevFrontendOpen(reply, "agent"));
  EXPECT_FALSE(QmpChardevFrontendOpen(reply, "other"));
  EXPECT_FALSE(QmpChardevFrontendOpen(json::array({{{"label", "agent"}, {"frontend-open", 1}}}),
                                      "agent"));
  EXPECT_FALSE(QmpChardevFrontendOpen(json::array({{{"label", 3}}, 4, "x", nullptr}), "agent"));
  EXPECT_FALSE(QmpChardevFrontendOpen(json{{"label", "agent"}}, "agent"));
}

TEST(QmpRepliesTest, EventTime) {
  absl::Time fallback = absl::FromUnixSeconds(42);
  EXPECT_EQ(QmpEventTime(json{{"timestamp", {{"seconds", 10}, {"microseconds", 5}}}}, fallback),
            absl::FromUnixMicros(10'000'005));
  for (const json& bad : {json{{"timestamp", {{"seconds", "10"}, {"microseconds", 5}}}},
                          json{{"timestamp", {{"seconds", 10}}}},
                          json{{"timestamp", {{"seconds", -1}, {"microseconds", 0}}}},
                          json{{"timestamp", {{"seconds", 1}, {"microseconds", 1'000'000}}}},
                          json{{"timestamp", {{"seconds", std::numeric_limits<int64_t>::max()},
                                              {"microseconds", 999'999}}}},
                          json{{"timestamp", {{"seconds", std::numeric_limits<uint64_t>::max()},
                                              {"microseconds", 0}}}},
                          json{{"timestamp", 3}}, json("x")}) {
    EXPECT_EQ(QmpEventTime(bad, fallback), fallback) << bad.dump();
  }
}

TEST(QmpRepliesTest, EventsOfAnyShape) {
  auto effect = InterpretQmpEvent({"VSERPORT_CHANGE", {{"id", "agent.0"}, {"open", true}}, {}},
                                  "agent.0");
  ASSERT_TRUE(effect.agent_port_open.has_value());
  EXPECT_TRUE(*effect.agent_port_open);
  // Another port, a numeric id, no agent port configured: nothing.
  EXPECT_FALSE(InterpretQmpEvent({"VSERPORT_CHANGE", {{"id", "p1"}, {"open", true}}, {}}, "agent.0")
                   .agent_port_open);
  EXPECT_FALSE(
      InterpretQmpEvent({"VSERPORT_CHANGE", {{"id", 1}, {"open", true}}, {}}, "agent.0").agent_port_open);
  EXPECT_FALSE(InterpretQmpEvent({"VSERPORT_CHANGE", {{"id", "agent.0"}}, {}}, "").agent_port_open);
  // "open": "yes" is not true.
  EXPECT_EQ(InterpretQmpEvent({"VSERPORT_CHANGE", {{"id", "agent.0"}, {"open", "yes"}}, {}},
                              "agent.0")
                .agent_port_open,
            std::optional<bool>(false));

  EXPECT_EQ(InterpretQmpEvent({"SHUTDOWN", {{"reason", "guest-reset"}}, {}}, "").shutdown_reason,
            std::optional<std::string>("guest-reset"));
  EXPECT_EQ(InterpretQmpEvent({"SHUTDOWN", {{"reason", 9}}, {}}, "").shutdown_reason,
            std::optional<std::string>("shutdown"));
  EXPECT_EQ(InterpretQmpEvent({"GUEST_PANICKED", json::object(), {}}, "").shutdown_reason,
            std::optional<std::string>("guest-panic"));
  EXPECT_EQ(InterpretQmpEvent({"DEVICE_DELETED", {{"device", "n0"}}, {}}, "").deleted_device,
            std::optional<std::string>("n0"));
  EXPECT_FALSE(InterpretQmpEvent({"DEVICE_DELETED", {{"device", json::array()}}, {}}, "")
                   .deleted_device);
  EXPECT_FALSE(InterpretQmpEvent({"DEVICE_DELETED", {{"path", "/x"}}, {}}, "").deleted_device);
}

// Through the client: events whose data is not an object, or has fields of the wrong
// types, reach the callback as an object (or not at all) and the connection carries on.
TEST(QmpRepliesTest, MalformedEventsDoNotBreakTheClient) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  testing::ScriptedQmpServer server{UniqueFd(fds[1])};
  server.OnCommand("query-status", [](const json&) { return json{{"return", 5}}; });
  server.Start();
  std::atomic<int> events{0};
  std::atomic<int> non_objects{0};
  QmpClientOptions options;
  options.on_event = [&](const QmpEvent& e) {
    if (!e.data.is_object()) ++non_objects;
    (void)InterpretQmpEvent(e, "agent.0");
    ++events;
  };
  auto client = QmpClient::FromFd(UniqueFd(fds[0]), std::move(options));
  ASSERT_OK(client);
  server.SendLine(R"({"event": "SHUTDOWN", "data": 5})");
  server.SendLine(R"({"event": "VSERPORT_CHANGE", "data": {"id": 1, "open": "x"}})");
  server.SendLine(
      R"({"event": "SHUTDOWN", "data": {"reason": []}, "timestamp": {"seconds": "s"}})");
  auto status = (*client)->Execute("query-status", nullptr, absl::Seconds(5));
  ASSERT_OK(status);
  EXPECT_EQ(QmpRunStatus(*status), "unknown");
  EXPECT_TRUE((*client)->IsConnected());
  EXPECT_EQ(events.load(), 3);
  EXPECT_EQ(non_objects.load(), 0);
}

}  // namespace
}  // namespace kuasar::vmm
