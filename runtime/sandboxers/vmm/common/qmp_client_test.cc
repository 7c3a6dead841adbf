#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/sandboxers/vmm/common/qmp_client.h"
#include "absl/synchronization/notification.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/sandboxers/vmm/common/testing/scripted_qmp_server.h"

namespace kuasar::vmm {
namespace {

using ::kuasar::testing::StatusIs;
using nlohmann::json;
using ::testing::HasSubstr;
using testing::ScriptedQmpServer;

struct Pair {
  UniqueFd client;
  std::unique_ptr<ScriptedQmpServer> server;
};

Pair MakePair() {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  return {UniqueFd(fds[0]), std::make_unique<ScriptedQmpServer>(UniqueFd(fds[1]))};
}

TEST(QmpClientTest, HandshakeThenExecute) {
  Pair p = MakePair();
  p.server->OnCommand("query-status", [](const json&) {
    return json{{"return", {{"status", "running"}, {"running", true}}}};
  });
  p.server->Start();
  auto client = QmpClient::FromFd(std::move(p.client));
  ASSERT_OK(client);
  EXPECT_EQ((*client)->greeting()["version"]["qemu"]["major"], 7);
  auto status = (*client)->Execute("query-status");
  ASSERT_OK(status);
  EXPECT_EQ((*status)["status"], "running");
  auto got = p.server->received();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]["execute"], "qmp_capabilities");  // always first
  EXPECT_EQ(got[1]["execute"], "query-status");
}

TEST(QmpClientTest, ArgumentsAreSent) {
  Pair p = MakePair();
  p.server->OnCommand("device_del", [](const json&) { return json{{"return", json::object()}}; });
  p.server->Start();
  auto client = QmpClient::FromFd(std::move(p.client));
  ASSERT_OK(client);
  ASSERT_OK((*client)->Execute("device_del", {{"id", "net1"}}));
  EXPECT_EQ(p.server->received()[1]["arguments"], json({{"id", "net1"}}));
}

TEST(QmpClientTest, ErrorsBecomeStatusesWithClassAndDesc) {
  Pair p = MakePair();
  p.server->OnCommand("device_del", [](const json&) {
    return json{{"error", {{"class", "DeviceNotFound"}, {"desc", "Device 'x' not found"}}}};
  });
  p.server->OnCommand("device_add", [](const json&) {
    return json{
        {"error",
         {{"class", "GenericError"}, {"desc", "Bus 'pcie.0' does not support hotplugging"}}}};
  });
  p.server->Start();
  auto client = QmpClient::FromFd(std::move(p.client));
  ASSERT_OK(client);
  EXPECT_THAT((*client)->Execute("device_del", {{"id", "x"}}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("Device 'x' not found")));
  EXPECT_THAT((*client)->Execute("device_add", {{"driver", "virtio-net-pci"}}),
              StatusIs(absl::StatusCode::kUnknown,
                       HasSubstr("QMP device_add: GenericError: Bus 'pcie.0'")));
  EXPECT_THAT((*client)->Execute("no-such-command"),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("CommandNotFound")));
}

TEST(QmpClientTest, EventsArriveBetweenReplies) {
  Pair p = MakePair();
  ScriptedQmpServer* server = p.server.get();
  server->OnCommand("system_powerdown", [server](const json&) {
    server->SendEvent("POWERDOWN");
    return json{{"return", json::object()}};
  });
  p.server->Start();
  std::mutex mu;
  std::vector<QmpEvent> events;
  absl::Notification shutdown;
  QmpClientOptions options;
  options.on_event = [&](const QmpEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(e);
    if (e.name == "SHUTDOWN") shutdown.Notify();
  };
  auto client = QmpClient::FromFd(std::move(p.client), options);
  ASSERT_OK(client);
  ASSERT_OK((*client)->Execute("system_powerdown"));
  server->SendEvent("SHUTDOWN", {{"guest", true}, {"reason", "guest-shutdown"}});
  ASSERT_TRUE(shutdown.WaitForNotificationWithTimeout(absl::Seconds(5)));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].name, "POWERDOWN");
  EXPECT_EQ(events[1].data["reason"], "guest-shutdown");
  EXPECT_LT(absl::AbsDuration(events[1].at - absl::Now()), absl::Seconds(60));
}

TEST(QmpClientTest, TimeoutThenLateReplyIsIgnored) {
  Pair p = MakePair();
  std::atomic<int> calls{0};
  p.server->OnCommand("query-status", [&](const json&) -> json {
    if (calls++ == 0) return nullptr;  // the first one never gets an answer
    return json{{"return", {{"status", "running"}}}};
  });
  p.server->Start();
  auto client = QmpClient::FromFd(std::move(p.client));
  ASSERT_OK(client);
  absl::Time start = absl::Now();
  EXPECT_THAT((*client)->Execute("query-status", nullptr, absl::Milliseconds(100)),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("query-status")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  // A reply for the timed-out id arrives late: it must not be taken for the next one.
  p.server->SendLine(R"({"return": {"status": "stale"}, "id": 1})");
  auto next = (*client)->Execute("query-status");
  ASSERT_OK(next);
  EXPECT_EQ((*next)["status"], "running");
}

TEST(QmpClientTest, ReplyWithoutIdGoesToTheOldestCommand) {
  Pair p = MakePair();
  ScriptedQmpServer* server = p.server.get();
  p.server->OnCommand("bogus", [server](const json&) -> json {
    // What QEMU sends for input it cannot parse: an error without the id.
    server->SendLine(R"({"error": {"class": "GenericError", "desc": "JSON parse error"}})");
    return nullptr;
  });
  p.server->Start();
  auto client = QmpClient::FromFd(std::move(p.client));
  ASSERT_OK(client);
  EXPECT_THAT((*client)->Execute("bogus"),
              StatusIs(absl::StatusCode::kUnknown, HasSubstr("JSON parse error")));
}

TEST(QmpClientTest, DisconnectFailsPendingAndReportsOnce) {
  Pair p = MakePair();
  p.server->OnCommand("query-status", [](const json&) -> json { return nullptr; });
  p.server->Start();
  std::atomic<int> disconnects{0};
  QmpClientOptions options;
  options.on_disconnect = [&](const absl::Status& st) {
    EXPECT_TRUE(absl::IsUnavailable(st)) << st;
    disconnects++;
  };
  auto client = QmpClient::FromFd(std::move(p.client), options);
  ASSERT_OK(client);
  std::thread closer([&] {
    p.server->WaitForCommands(2);
    p.server->CloseConnection();
  });
  EXPECT_THAT((*client)->Execute("query-status"), StatusIs(absl::StatusCode::kUnavailable));
  closer.join();
  EXPECT_FALSE((*client)->IsConnected());
  EXPECT_THAT((*client)->Execute("query-status"), StatusIs(absl::StatusCode::kUnavailable));
  (*client)->Close();
  EXPECT_EQ(disconnects.load(), 1);
}

TEST(QmpClientTest, HandshakeTimesOutWithoutGreeting) {
  Pair p = MakePair();
  p.server->Start(/*greeting=*/"");
  QmpClientOptions options;
  options.handshake_timeout = absl::Milliseconds(200);
  absl::Time start = absl::Now();
  EXPECT_THAT(QmpClient::FromFd(std::move(p.client), options),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("another client")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST(QmpClientTest, BadGreetingAndRefusedCapabilities) {
  Pair bad = MakePair();
  bad.server->Start("this is not json");
  EXPECT_THAT(QmpClient::FromFd(std::move(bad.client)), StatusIs(absl::StatusCode::kDataLoss));

  Pair refused = MakePair();
  refused.server->OnCommand("qmp_capabilities", [](const json&) {
    return json{
        {"error",
         {{"class", "GenericError"}, {"desc", "Capabilities negotiation is already complete"}}}};
  });
  refused.server->Start();
  EXPECT_THAT(QmpClient::FromFd(std::move(refused.client)),
              StatusIs(absl::StatusCode::kUnknown, HasSubstr("qmp_capabilities")));
}

TEST(QmpClientTest, ConcurrentCommandsFromManyThreads) {
  Pair p = MakePair();
  p.server->OnCommand("echo", [](const json& args) { return json{{"return", args}}; });
  p.server->Start();
  auto client = QmpClient::FromFd(std::move(p.client));
  ASSERT_OK(client);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto r = (*client)->Execute("echo", {{"n", t * 1000 + i}});
        if (r.ok() && (*r)["n"] == t * 1000 + i) ok++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 400);
}

TEST(QmpClientTest, BlockingExecuteOnTheIoThreadIsRefused) {
  Pair p = MakePair();
  p.server->Start();
  absl::Notification done;
  absl::Status seen;
  QmpClient* raw = nullptr;
  QmpClientOptions options;
  options.on_event = [&](const QmpEvent&) {
    seen = raw->Execute("query-status").status();
    done.Notify();
  };
  auto client = QmpClient::FromFd(std::move(p.client), options);
  ASSERT_OK(client);
  raw = client->get();
  p.server->SendEvent("RESUME");
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_THAT(seen, StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(QmpClientTest, ConnectRetriesUntilTheSocketAppears) {
  TempDir dir("qmp");
  std::string path = dir.Sub("qmp.sock");
  std::unique_ptr<ScriptedQmpServer> server;
  std::thread listener([&] {
    absl::SleepFor(absl::Milliseconds(150));
    int l = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(::listen(l, 1), 0);
    server =
        std::make_unique<ScriptedQmpServer>(UniqueFd(::accept4(l, nullptr, nullptr, SOCK_CLOEXEC)));
    server->Start();
    ::close(l);
  });
  auto client = QmpClient::Connect(path, absl::Now() + absl::Seconds(5));
  listener.join();
  ASSERT_OK(client);
  EXPECT_TRUE((*client)->IsConnected());
  client->reset();

  EXPECT_THAT(QmpClient::Connect(dir.Sub("missing.sock"), absl::Now() + absl::Milliseconds(50)),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("missing.sock")));
  QmpClientOptions options;
  options.keep_trying = [] { return absl::AbortedError("qemu exited"); };
  EXPECT_THAT(QmpClient::Connect(dir.Sub("missing.sock"), absl::Now() + absl::Seconds(5), options),
              StatusIs(absl::StatusCode::kAborted));
}

TEST(QmpClientTest, ErrorMapping) {
  EXPECT_THAT(QmpErrorToStatus("x", json{{"class", "DeviceNotActive"}, {"desc", "d"}}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "QMP x: DeviceNotActive: d"));
  EXPECT_THAT(QmpErrorToStatus("x", json("garbage")), StatusIs(absl::StatusCode::kUnknown));
}

}  // namespace
}  // namespace kuasar::vmm
