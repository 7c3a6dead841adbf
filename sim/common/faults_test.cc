// Fault injection, end to end: by config (--faults FILE) and by the simulator's fault
// APIs (REST PUT /kuasar/faults, QMP kuasar-faults), in each VMM's own error shape.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>

#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "sim/testing/fake_vmm_process.h"
#include "sim/testing/qmp_client.h"
#include "sim/testing/rest_client.h"

namespace kuasar::sim {
namespace {

using nlohmann::json;
using testing::FakeVmmOptions;
using testing::FakeVmmProcess;
using testing::QmpClient;

class FaultsTest : public ::testing::Test {
 protected:
  absl::StatusOr<FakeVmmProcess> Start(const std::string& personality,
                                       std::vector<std::string> args, const std::string& socket,
                                       std::vector<std::string> sim_flags = {}) {
    FakeVmmOptions o;
    o.personality = personality;
    o.args = std::move(args);
    o.wait_socket = socket;
    o.sim_flags = std::move(sim_flags);
    o.log_file = dir_.Sub(personality + ".log");
    return FakeVmmProcess::Start(o);
  }
  absl::StatusOr<FakeVmmProcess> StartClh(std::vector<std::string> sim_flags = {}) {
    return Start("cloud-hypervisor", {"--api-socket", dir_.Sub("api.sock")}, dir_.Sub("api.sock"),
                 std::move(sim_flags));
  }
  absl::StatusOr<FakeVmmProcess> StartQemu() {
    return Start(
        "qemu-system-x86_64",
        {"-kernel", "/k", "-qmp", "unix:" + dir_.Sub("qmp.sock") + ",server,nowait", "-chardev",
         "socket,id=a,path=" + dir_.Sub("agent.sock") + ",server,nowait", "-device",
         "virtio-serial-pci", "-device", "virtserialport,chardev=a,name=agent.channel.0"},
        dir_.Sub("qmp.sock"));
  }
  testing::HttpResult Clh(const std::string& method, const std::string& path,
                          const std::string& body = "") {
    auto r = testing::HttpCall(dir_.Sub("api.sock"), method, path, body);
    EXPECT_OK(r);
    return r.ok() ? *r : testing::HttpResult{};
  }
  void ClhBoot() {
    json cfg = {{"payload", {{"kernel", "/k"}}},
                {"vsock", {{"cid", 3}, {"socket", dir_.Sub("v.sock")}}}};
    ASSERT_EQ(Clh("PUT", "/api/v1/vm.create", cfg.dump()).status, 204);
    ASSERT_EQ(Clh("PUT", "/api/v1/vm.boot").status, 204);
  }
  UniqueFd Vsock() {
    UniqueFd fd;
    testing::WaitUntil(
        [&] {
          std::string reply;
          auto c = testing::HybridConnect(dir_.Sub("v.sock"), 1024, &reply);
          if (!c.ok() || reply.empty()) return false;
          fd = std::move(*c);
          return true;
        },
        5000);
    return fd;
  }
  TempDir dir_{"simfault"};
};

TEST_F(FaultsTest, RefuseFromConfigFileInClhShapeThenLetThrough) {
  std::string faults = testing::WriteFile(dir_.path(), "f.toml", R"(
    [faults]
    [[faults.refuse]]
    method = "PUT"
    path = "/api/v1/vm.boot"
    times = 1
  )");
  auto vmm = StartClh({"--faults", faults});
  ASSERT_OK(vmm);
  ASSERT_EQ(Clh("PUT", "/api/v1/vm.create", R"({"payload":{"kernel":"/k"}})").status, 204);
  auto refused = Clh("PUT", "/api/v1/vm.boot");
  EXPECT_EQ(refused.status, 500);
  EXPECT_EQ(refused.Json(),
            json({"Error from API", "PUT /api/v1/vm.boot refused by fault injection"}));
  EXPECT_EQ(Clh("PUT", "/api/v1/vm.boot").status, 204);
}

TEST_F(FaultsTest, RefuseAndSlowThroughTheFirecrackerApi) {
  auto vmm = Start("firecracker", {"--api-sock", dir_.Sub("fc.sock")}, dir_.Sub("fc.sock"));
  ASSERT_OK(vmm);
  auto call = [&](const std::string& m, const std::string& p, const json& b) {
    return *testing::HttpCall(dir_.Sub("fc.sock"), m, p, b.is_null() ? "" : b.dump());
  };
  ASSERT_EQ(call("PUT", "/kuasar/faults",
                 {{"refuse", {{{"method", "PUT"}, {"path", "/actions"}, {"message", "no start"}}}},
                  {"slow", {{{"method", "GET"}, {"path", "/"}, {"delay_ms", 300}}}}})
                .status,
            204);
  EXPECT_EQ(call("GET", "/kuasar/faults", nullptr).Json()["refuse"][0]["path"], "/actions");
  auto r = call("PUT", "/actions", {{"action_type", "InstanceStart"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.Json(), json({{"fault_message", "no start"}}));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(call("GET", "/", nullptr).status, 200);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(290));
  EXPECT_EQ(call("PUT", "/kuasar/faults", {{"hang", true}}).status, 400);
}

TEST_F(FaultsTest, QmpRefuseAndSlow) {
  auto vmm = StartQemu();
  ASSERT_OK(vmm);
  auto qmp = QmpClient::Connect(dir_.Sub("qmp.sock"));
  ASSERT_OK(qmp);
  ASSERT_OK(qmp->Negotiate());
  auto set =
      qmp->Execute("kuasar-faults", {{"refuse", {{{"command", "stop"}}}},
                                     {"slow", {{{"command", "query-status"}, {"delay_ms", 300}}}}});
  ASSERT_OK(set);
  ASSERT_TRUE(set->contains("return")) << set->dump();
  auto stop = qmp->Execute("stop");
  ASSERT_OK(stop);
  EXPECT_EQ((*stop)["error"]["class"], "GenericError");
  EXPECT_EQ((*stop)["error"]["desc"], "kuasar-fake-vmm: stop refused by fault injection");
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_OK(qmp->Execute("query-status"));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(290));
}

TEST_F(FaultsTest, HangBootNeverStartsTheAgent) {
  std::string faults = testing::WriteFile(dir_.path(), "f.toml", "[faults]\nhang_boot = true\n");
  auto vmm = StartClh({"--faults", faults});
  ASSERT_OK(vmm);
  ClhBoot();
  EXPECT_EQ(Clh("GET", "/api/v1/vm.info").Json()["state"], "Running");
  EXPECT_FALSE(vmm->WaitAgent(500).has_value());
  std::string reply = "x";
  ASSERT_OK(testing::HybridConnect(dir_.Sub("v.sock"), 1024, &reply));
  EXPECT_EQ(reply, "");
}

TEST_F(FaultsTest, CrashAfterKillsVmmAndAgent) {
  auto vmm = StartClh();
  ASSERT_OK(vmm);
  ClhBoot();
  UniqueFd agent = Vsock();
  ASSERT_TRUE(agent.valid());
  auto agent_pid = vmm->WaitAgent(1000);
  ASSERT_TRUE(agent_pid);
  ASSERT_EQ(
      Clh("PUT", "/kuasar/faults", R"({"crash_after_ms":100,"crash_signal":"SIGSEGV"})").status,
      204);
  auto st = vmm->WaitExit(3000);
  ASSERT_OK(st);
  EXPECT_TRUE(WIFSIGNALED(*st));
  EXPECT_EQ(WTERMSIG(*st), SIGSEGV);
  EXPECT_FALSE(testing::ProcessAlive(*agent_pid));
}

TEST_F(FaultsTest, KillAgentIsAGuestCrash) {
  auto vmm = StartQemu();
  ASSERT_OK(vmm);
  auto qmp = QmpClient::Connect(dir_.Sub("qmp.sock"));
  ASSERT_OK(qmp);
  ASSERT_OK(qmp->Negotiate());
  ASSERT_TRUE(vmm->WaitAgent(3000));
  ASSERT_OK(qmp->Execute("kuasar-faults", {{"kill_agent_after_ms", 0}}));
  auto ev = qmp->WaitEvent("SHUTDOWN");
  ASSERT_OK(ev);
  EXPECT_EQ((*ev)["data"], json({{"guest", true}, {"reason", "guest-panic"}}));
  auto st = vmm->WaitExit(3000);
  ASSERT_OK(st);
  EXPECT_EQ(WEXITSTATUS(*st), 0);
}

TEST_F(FaultsTest, DropChannelClosesTheAgentStream) {
  auto vmm = StartQemu();
  ASSERT_OK(vmm);
  std::string got;
  UniqueFd host;
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        auto fd = testing::ConnectUnix(dir_.Sub("agent.sock"));
        if (!fd.ok()) return false;
        got = testing::RoundTrip(fd->get(), "ping", 4, 300);
        host = std::move(*fd);
        return got == "ping";
      },
      5000));
  auto qmp = QmpClient::Connect(dir_.Sub("qmp.sock"));
  ASSERT_OK(qmp);
  ASSERT_OK(qmp->Negotiate());
  ASSERT_OK(qmp->Execute("kuasar-faults", {{"drop_channel_after_ms", 0}}));
  bool eof = false;
  testing::ReadSome(host.get(), 2000, &eof);
  EXPECT_TRUE(eof);
  // The port stays dead: a new host connection reaches no guest.
  auto again = testing::ConnectUnix(dir_.Sub("agent.sock"));
  ASSERT_OK(again);
  EXPECT_EQ(testing::RoundTrip(again->get(), "anyone?", 7, 300), "");
}

TEST_F(FaultsTest, DropChannelClosesVsockConnections) {
  auto vmm = StartClh();
  ASSERT_OK(vmm);
  ClhBoot();
  UniqueFd agent = Vsock();
  ASSERT_TRUE(agent.valid());
  EXPECT_EQ(testing::RoundTrip(agent.get(), "x", 1), "x");
  ASSERT_EQ(Clh("PUT", "/kuasar/faults", R"({"drop_channel_after_ms":0})").status, 204);
  bool eof = false;
  testing::ReadSome(agent.get(), 2000, &eof);
  EXPECT_TRUE(eof);
}

}  // namespace
}  // namespace kuasar::sim
