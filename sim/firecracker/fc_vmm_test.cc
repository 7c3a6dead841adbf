// The Firecracker personality as a process: pre-boot configuration over its API socket,
// InstanceStart, the agent over hybrid vsock, --config-file, errors, and its exits.
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

class FcVmmTest : public ::testing::Test {
 protected:
  std::string Api() const { return dir_.Sub("fc.sock"); }
  std::string Vsock() const { return dir_.Sub("v.sock"); }
  absl::StatusOr<FakeVmmProcess> Start(std::vector<std::string> args, bool wait = true) {
    FakeVmmOptions o;
    o.personality = "firecracker";
    o.args = std::move(args);
    if (wait) o.wait_socket = Api();
    o.log_file = dir_.Sub("vmm.log");
    return FakeVmmProcess::Start(o);
  }
  testing::HttpResult Call(const std::string& method, const std::string& path,
                           const std::string& body = "") {
    auto r = testing::HttpCall(Api(), method, path, body);
    EXPECT_OK(r);
    return r.ok() ? *r : testing::HttpResult{};
  }
  void Configure() {
    ASSERT_EQ(
        Call("PUT", "/boot-source", R"({"kernel_image_path":"/k","boot_args":"console=ttyS0"})")
            .status,
        204);
    ASSERT_EQ(Call("PUT", "/machine-config", R"({"vcpu_count":1,"mem_size_mib":128})").status, 204);
    ASSERT_EQ(Call("PUT", "/vsock", json{{"guest_cid", 3}, {"uds_path", Vsock()}}.dump()).status,
              204);
  }
  UniqueFd ConnectAgent() {
    UniqueFd fd;
    testing::WaitUntil(
        [&] {
          std::string reply;
          auto c = testing::HybridConnect(Vsock(), 1024, &reply);
          if (!c.ok() || reply != "OK 1073741824") return false;
          fd = std::move(*c);
          return true;
        },
        5000);
    return fd;
  }
  TempDir dir_{"simfc"};
};

TEST_F(FcVmmTest, ConfigureStartReachTheAgent) {
  auto vmm = Start({"--api-sock", Api(), "--id", "pod-1"});
  ASSERT_OK(vmm);
  auto info = Call("GET", "/");
  EXPECT_EQ(info.server, "Firecracker API");
  EXPECT_EQ(info.Json()["state"], "Not started");
  EXPECT_EQ(info.Json()["id"], "pod-1");
  auto early = Call("PUT", "/actions", R"({"action_type":"InstanceStart"})");
  EXPECT_EQ(early.status, 400);
  EXPECT_EQ(early.Json()["fault_message"], "Cannot start microvm without kernel configuration.");
  Configure();
  EXPECT_TRUE(testing::ConnectUnix(Vsock()).ok());  // bound at PUT /vsock, before boot
  ASSERT_EQ(Call("PUT", "/actions", R"({"action_type":"InstanceStart"})").status, 204);
  EXPECT_EQ(Call("GET", "/").Json()["state"], "Running");
  UniqueFd agent = ConnectAgent();
  ASSERT_TRUE(agent.valid()) << vmm->Log();
  EXPECT_EQ(testing::RoundTrip(agent.get(), "ttrpc bytes", 11), "ttrpc bytes");
  auto late = Call("PUT", "/machine-config", R"({"vcpu_count":2,"mem_size_mib":128})");
  EXPECT_EQ(late.status, 400);
  EXPECT_EQ(late.Json()["fault_message"],
            "The requested operation is not supported after starting the microVM.");
  EXPECT_EQ(Call("PATCH", "/vm", R"({"state":"Paused"})").status, 204);
  EXPECT_EQ(Call("GET", "/").Json()["state"], "Paused");
  EXPECT_EQ(Call("PATCH", "/vm", R"({"state":"Resumed"})").status, 204);
  EXPECT_EQ(testing::RoundTrip(agent.get(), "after resume", 12), "after resume");
  // Ctrl-Alt-Del: the guest shuts down, and Firecracker exits with it.
  EXPECT_EQ(Call("PUT", "/actions", R"({"action_type":"SendCtrlAltDel"})").status, 204);
  auto st = vmm->WaitExit(3000);
  ASSERT_OK(st);
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0);
}

TEST_F(FcVmmTest, PausedGuestMovesNoBytes) {
  auto vmm = Start({"--api-sock", Api()});
  ASSERT_OK(vmm);
  Configure();
  ASSERT_EQ(Call("PUT", "/actions", R"({"action_type":"InstanceStart"})").status, 204);
  UniqueFd agent = ConnectAgent();
  ASSERT_TRUE(agent.valid());
  ASSERT_EQ(Call("PATCH", "/vm", R"({"state":"Paused"})").status, 204);
  EXPECT_EQ(testing::RoundTrip(agent.get(), "held", 4, 300), "");
  ASSERT_EQ(Call("PATCH", "/vm", R"({"state":"Resumed"})").status, 204);
  EXPECT_EQ(testing::ReadSome(agent.get(), 3000), "held");
}

TEST_F(FcVmmTest, ConfigFileWithoutApi) {
  std::string kernel = testing::WriteFile(dir_.path(), "vmlinux", "");
  std::string cfg =
      testing::WriteFile(dir_.path(), "vm.json",
                         json{{"boot-source", {{"kernel_image_path", kernel}}},
                              {"machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 64}}},
                              {"vsock", {{"guest_cid", 3}, {"uds_path", Vsock()}}}}
                             .dump());
  auto vmm = Start({"--no-api", "--config-file", cfg, "--boot-timer"}, /*wait=*/false);
  ASSERT_OK(vmm);
  UniqueFd agent = ConnectAgent();
  ASSERT_TRUE(agent.valid()) << vmm->Log();
  EXPECT_FALSE(testing::ConnectUnix(Api()).ok());
  EXPECT_TRUE(testing::WaitUntil(
      [&] { return vmm->Log().find("Guest-boot-time") != std::string::npos; }, 2000));
}

TEST_F(FcVmmTest, ArgumentAndConfigurationErrors) {
  auto bad = Start({"--api-sock", Api(), "--bogus"}, false);
  ASSERT_OK(bad);
  auto st = bad->WaitExit(3000);
  ASSERT_OK(st);
  EXPECT_EQ(WEXITSTATUS(*st), 153);
  EXPECT_NE(bad->Log().find("Found argument '--bogus' which wasn't expected"), std::string::npos);

  std::string cfg =
      testing::WriteFile(dir_.path(), "bad.json", R"({"machine-config":{"vcpu_count":1}})");
  auto badcfg = Start({"--no-api", "--config-file", cfg}, false);
  ASSERT_OK(badcfg);
  st = badcfg->WaitExit(3000);
  ASSERT_OK(st);
  EXPECT_EQ(WEXITSTATUS(*st), 152);
  EXPECT_NE(badcfg->Log().find("missing field `mem_size_mib`"), std::string::npos);

  // Firecracker does not take over a socket path in use.
  testing::WriteFile(dir_.path(), "fc.sock", "");
  auto taken = Start({"--api-sock", Api()}, false);
  ASSERT_OK(taken);
  st = taken->WaitExit(3000);
  ASSERT_OK(st);
  EXPECT_EQ(WEXITSTATUS(*st), 1);
  EXPECT_NE(taken->Log().find("Failed to open the API socket"), std::string::npos);
}

}  // namespace
}  // namespace kuasar::sim
