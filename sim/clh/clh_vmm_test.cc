// The Cloud Hypervisor personality as a process: its REST API over the socket, the guest
// agent (the stand-in) reached over hybrid vsock, memory, and the ways the VMM ends.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "sim/testing/fake_vmm_process.h"
#include "sim/testing/rest_client.h"

namespace kuasar::sim {
namespace {

using nlohmann::json;
using testing::FakeVmmOptions;
using testing::FakeVmmProcess;
using testing::HttpCall;

class ClhVmmTest : public ::testing::Test {
 protected:
  std::string Api() const { return dir_.Sub("api.sock"); }
  std::string Vsock() const { return dir_.Sub("vsock.sock"); }
  std::string Config(int mem_mib = 128) const {
    return json{{"cpus", {{"boot_vcpus", 1}, {"max_vcpus", 1}}},
                {"memory", {{"size", static_cast<uint64_t>(mem_mib) << 20}}},
                {"payload", {{"kernel", "/k"}, {"cmdline", "console=hvc0 quiet"}}},
                {"vsock", {{"cid", 3}, {"socket", Vsock()}}}}
        .dump();
  }
  FakeVmmProcess Start(std::vector<std::string> extra = {}, std::string model = "") {
    FakeVmmOptions o;
    o.personality = "cloud-hypervisor";
    o.args = {"--api-socket", "path=" + Api()};
    o.args.insert(o.args.end(), extra.begin(), extra.end());
    o.wait_socket = Api();
    o.log_file = dir_.Sub("vmm.log");
    if (!model.empty()) o.model = model;
    auto p = FakeVmmProcess::Start(o);
    EXPECT_OK(p);
    return std::move(*p);
  }
  testing::HttpResult Call(const std::string& method, const std::string& ep,
                           const std::string& body = "") {
    auto r = HttpCall(Api(), method, "/api/v1/" + ep, body);
    EXPECT_OK(r);
    return r.ok() ? *r : testing::HttpResult{};
  }
  // CONNECT 1024 until the agent answers (it starts after the modelled boot).
  UniqueFd ConnectAgent() {
    UniqueFd fd;
    testing::WaitUntil(
        [&] {
          std::string reply;
          auto c = testing::HybridConnect(Vsock(), 1024, &reply);
          if (!c.ok() || reply.rfind("OK ", 0) != 0) return false;
          fd = std::move(*c);
          return true;
        },
        5000);
    return fd;
  }
  TempDir dir_{"simclh"};
};

TEST_F(ClhVmmTest, CreateBootReachTheAgentShutdown) {
  FakeVmmProcess vmm = Start();
  auto ping = Call("GET", "vmm.ping");
  EXPECT_EQ(ping.status, 200);
  EXPECT_EQ(ping.server, "Cloud Hypervisor API");
  EXPECT_EQ(Call("PUT", "vm.boot").status, 404);
  EXPECT_EQ(Call("PUT", "vm.create", Config()).status, 204);
  EXPECT_EQ(Call("PUT", "vm.create", Config()).status, 500);
  EXPECT_EQ(Call("PUT", "vm.boot").status, 204);
  EXPECT_EQ(Call("GET", "vm.info").Json()["state"], "Running");

  UniqueFd agent = ConnectAgent();
  ASSERT_TRUE(agent.valid()) << vmm.Log();
  EXPECT_EQ(testing::RoundTrip(agent.get(), "hello agent", 11), "hello agent");
  EXPECT_EQ(testing::RoundTrip(agent.get(), "!env KUASAR_GUEST_CMDLINE\n", 40),
            "KUASAR_GUEST_CMDLINE=console=hvc0 quiet\n");
  // A port nobody listens on: the VMM closes the connection without an answer.
  std::string reply = "x";
  auto none = testing::HybridConnect(Vsock(), 9999, &reply);
  ASSERT_OK(none);
  EXPECT_EQ(reply, "");

  auto agent_pid = vmm.WaitAgent(2000);
  ASSERT_TRUE(agent_pid);
  EXPECT_EQ(Call("PUT", "vm.shutdown").status, 204);
  EXPECT_TRUE(testing::WaitUntil([&] { return !testing::ProcessAlive(*agent_pid); }, 3000));
  EXPECT_EQ(Call("GET", "vm.info").Json()["state"], "Created");
  EXPECT_EQ(Call("PUT", "vmm.shutdown").status, 204);
  auto st = vmm.WaitExit(3000);
  ASSERT_OK(st);
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0);
}

TEST_F(ClhVmmTest, CommandLineBootAsKuasarStartsIt) {
  std::string kernel = testing::WriteFile(dir_.path(), "vmlinux", "");
  FakeVmmProcess vmm =
      Start({"--cpus", "boot=2", "--memory", "size=268435456,shared=on", "--kernel", kernel,
             "--cmdline", "console=hvc0 task.sharefs_type=virtiofs", "--vsock",
             "cid=3,socket=" + Vsock() + ",id=vsock", "-vv"});
  UniqueFd agent = ConnectAgent();
  ASSERT_TRUE(agent.valid()) << vmm.Log();
  json info = Call("GET", "vm.info").Json();
  EXPECT_EQ(info["state"], "Running");
  EXPECT_EQ(info["config"]["cpus"]["boot_vcpus"], 2);
  EXPECT_EQ(info["config"]["memory"]["shared"], true);
  EXPECT_EQ(info["config"]["vsock"]["id"], "vsock");
}

TEST_F(ClhVmmTest, GuestPoweroffEndsTheVmm) {
  FakeVmmProcess vmm = Start();
  ASSERT_EQ(Call("PUT", "vm.create", Config()).status, 204);
  ASSERT_EQ(Call("PUT", "vm.boot").status, 204);
  UniqueFd agent = ConnectAgent();
  ASSERT_TRUE(agent.valid());
  ASSERT_EQ(Call("PUT", "vm.power-button").status, 204);  // the agent gets SIGTERM
  auto st = vmm.WaitExit(3000);
  ASSERT_OK(st);
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << *st;
}

TEST_F(ClhVmmTest, AgentCrashEndsTheVmmWithAnError) {
  FakeVmmProcess vmm = Start();
  ASSERT_EQ(Call("PUT", "vm.create", Config()).status, 204);
  ASSERT_EQ(Call("PUT", "vm.boot").status, 204);
  UniqueFd agent = ConnectAgent();
  ASSERT_TRUE(agent.valid());
  (void)!::write(agent.get(), "!exit 3\n", 8);
  auto st = vmm.WaitExit(3000);
  ASSERT_OK(st);
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 1) << *st;
}

TEST_F(ClhVmmTest, GuestMemoryShowsInPss) {
  std::string model = testing::WriteFile(dir_.path(), "model.toml",
                                         "[memory]\noverhead_mib = 8\nguest_touched_mib = 64\n"
                                         "[checks]\nfiles = false\n");
  FakeVmmProcess vmm = Start({}, model);
  auto before = testing::PssKb(vmm.pid());
  ASSERT_OK(before);
  ASSERT_EQ(Call("PUT", "vm.create", Config(256)).status, 204);
  ASSERT_EQ(Call("PUT", "vm.boot").status, 204);
  auto after = testing::PssKb(vmm.pid());
  ASSERT_OK(after);
  EXPECT_GE(*after - *before, 70 * 1024)
      << "before " << *before << " after " << *after << "\n" << vmm.Log();
  ASSERT_EQ(Call("PUT", "vm.shutdown").status, 204);  // the guest's memory goes with it
  auto released = testing::PssKb(vmm.pid());
  ASSERT_OK(released);
  EXPECT_LT(*released, *after - 60 * 1024);
}

TEST_F(ClhVmmTest, CommandLineErrors) {
  FakeVmmOptions o;
  o.personality = "cloud-hypervisor";
  o.log_file = dir_.Sub("err.log");
  o.args = {"--api-socket", Api(), "--frobnicate"};
  auto p = FakeVmmProcess::Start(o);
  ASSERT_OK(p);
  auto st = p->WaitExit(3000);
  ASSERT_OK(st);
  EXPECT_EQ(WEXITSTATUS(*st), 2);
  EXPECT_NE(p->Log().find("error: unexpected argument '--frobnicate' found"), std::string::npos);
  o.args = {"--kernel", "/k", "--disk", "path=/d,bogus=1"};
  auto q = FakeVmmProcess::Start(o);
  ASSERT_OK(q);
  st = q->WaitExit(3000);
  ASSERT_OK(st);
  EXPECT_EQ(WEXITSTATUS(*st), 1);
  EXPECT_NE(q->Log().find("Error parsing --disk: unknown option: bogus"), std::string::npos);
}

}  // namespace
}  // namespace kuasar::sim
