// Needs root (CTest label "root"): the agent's namespaces, and that a SIGKILLed VMM takes
// its agent and everything under it down.
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "sim/testing/fake_vmm_process.h"
#include "sim/testing/rest_client.h"

namespace kuasar::sim {
namespace {

using nlohmann::json;
using testing::FakeVmmOptions;
using testing::FakeVmmProcess;

ino_t Ns(pid_t pid, const char* kind) {
  struct stat st {};
  ::stat(("/proc/" + std::to_string(pid) + "/ns/" + kind).c_str(), &st);
  return st.st_ino;
}

class IsolationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for PID/mount/UTS/IPC namespaces";
    // Orphans (a killed VMM's agent, if it survived) are reparented to us, so we can tell.
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  }
  FakeVmmProcess StartFirecracker() {
    FakeVmmOptions o;
    o.personality = "firecracker";
    o.args = {"--api-sock", dir_.Sub("fc.sock")};
    o.wait_socket = dir_.Sub("fc.sock");
    o.log_file = dir_.Sub("vmm.log");
    auto p = FakeVmmProcess::Start(o);
    EXPECT_OK(p);
    auto call = [&](const std::string& path, const json& body) {
      auto r = testing::HttpCall(dir_.Sub("fc.sock"), "PUT", path, body.dump());
      EXPECT_OK(r);
      EXPECT_EQ(r->status, 204) << r->body;
    };
    call("/boot-source", {{"kernel_image_path", "/k"}});
    call("/vsock", {{"guest_cid", 3}, {"uds_path", dir_.Sub("v.sock")}});
    call("/actions", {{"action_type", "InstanceStart"}});
    return std::move(*p);
  }
  UniqueFd Agent() {
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
  TempDir dir_{"simiso"};
};

TEST_F(IsolationTest, AgentRunsAsPidOneInFreshNamespacesSharingTheNetwork) {
  FakeVmmProcess vmm = StartFirecracker();
  UniqueFd agent = Agent();
  ASSERT_TRUE(agent.valid()) << vmm.Log();
  EXPECT_EQ(testing::RoundTrip(agent.get(), "!pid\n", 6), "pid=1\n");
  auto pid = vmm.WaitAgent(2000);
  ASSERT_TRUE(pid);
  for (const char* kind : {"pid", "mnt", "uts", "ipc"}) {
    EXPECT_NE(Ns(*pid, kind), Ns(vmm.pid(), kind)) << kind;
  }
  EXPECT_EQ(Ns(*pid, "net"), Ns(vmm.pid(), "net"));  // the pod's network, as in a VM's
  EXPECT_EQ(Ns(*pid, "user"), Ns(vmm.pid(), "user"));
}

TEST_F(IsolationTest, SigkillOfTheVmmLeavesNoAgent) {
  FakeVmmProcess vmm = StartFirecracker();
  UniqueFd agent = Agent();
  ASSERT_TRUE(agent.valid());
  auto pid = vmm.WaitAgent(2000);
  ASSERT_TRUE(pid);
  ASSERT_OK(vmm.Signal(SIGKILL));
  ASSERT_OK(vmm.WaitExit(3000));
  // The agent got SIGKILL from its parent's death; as our orphan now, we reap it.
  int status = 0;
  bool reaped = testing::WaitUntil([&] { return ::waitpid(*pid, &status, WNOHANG) == *pid; }, 3000);
  ASSERT_TRUE(reaped || !testing::ProcessAlive(*pid));
  if (reaped) {
    EXPECT_TRUE(WIFSIGNALED(status));
    EXPECT_EQ(WTERMSIG(status), SIGKILL);
  }
  EXPECT_EQ(testing::ReadSome(agent.get(), 1000), "");  // its connection is gone too
}

TEST_F(IsolationTest, GuestMemoryIsThePssTheModelSays) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "under a sanitizer the fake VMM's PSS also counts the sanitizer's shadow "
                  "of the guest memory it touches (ASan 1/8 more, TSan 4x)";
#endif
  std::string model = testing::WriteFile(dir_.path(), "m.toml",
                                         "[memory]\noverhead_mib = 5\nguest_touched_mib = 27\n"
                                         "[checks]\nfiles = false\n");
  FakeVmmOptions o;
  o.personality = "firecracker";
  o.model = model;
  o.args = {"--api-sock", dir_.Sub("fc.sock")};
  o.wait_socket = dir_.Sub("fc.sock");
  auto vmm = FakeVmmProcess::Start(o);
  ASSERT_OK(vmm);
  auto before = testing::PssKb(vmm->pid());
  ASSERT_OK(before);
  for (auto [path, body] : std::vector<std::pair<std::string, json>>{
           {"/boot-source", {{"kernel_image_path", "/k"}}},
           {"/actions", {{"action_type", "InstanceStart"}}}}) {
    ASSERT_EQ(testing::HttpCall(dir_.Sub("fc.sock"), "PUT", path, body.dump())->status, 204);
  }
  auto after = testing::PssKb(vmm->pid());
  ASSERT_OK(after);
  // 5 + 27 + 0 MiB touched, give or take the allocator.
  EXPECT_NEAR(static_cast<double>(*after - *before), 32 * 1024, 2 * 1024);
}

}  // namespace
}  // namespace kuasar::sim
