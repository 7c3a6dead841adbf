// vmm_capabilities: the config key, the setpriv argv, and a VMM-like process spawned with
// the default set really holding CAP_NET_ADMIN only, with no_new_privs.
#include "runtime/sandboxers/vmm/common/vmm_capabilities.h"

#include <unistd.h>

#include <fstream>
#include <optional>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <toml++/toml.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/status_matchers.h"
#include "runtime/sandboxers/vmm/common/vmm_process.h"

namespace kuasar::vmm {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::StatusOr<VmmCapabilities> Parse(std::string_view text) {
  toml::table t = toml::parse(text);
  TomlSection s(&t, "hypervisor", "test.toml");
  VmmCapabilities caps;
  RETURN_IF_ERROR(ParseVmmCapabilities(s, &caps));
  return caps;
}

TEST(VmmCapabilitiesTest, DefaultKeepsNetAdminOnly) {
  auto caps = Parse("");
  ASSERT_OK(caps);
  EXPECT_FALSE(caps->keep_all);
  EXPECT_THAT(caps->keep, ElementsAre("net_admin"));
}

TEST(VmmCapabilitiesTest, NamesInEitherSpelling) {
  auto caps = Parse(R"(vmm_capabilities = ["CAP_NET_ADMIN", "sys_resource"])");
  ASSERT_OK(caps);
  EXPECT_THAT(caps->keep, ElementsAre("net_admin", "sys_resource"));
  auto none = Parse("vmm_capabilities = []");
  ASSERT_OK(none);
  EXPECT_TRUE(none->keep.empty());
  auto all = Parse(R"(vmm_capabilities = ["all"])");
  ASSERT_OK(all);
  EXPECT_TRUE(all->keep_all);
}

TEST(VmmCapabilitiesTest, BadNamesAreRefused) {
  EXPECT_THAT(Parse(R"(vmm_capabilities = ["net_admin,+sys_admin"])"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown capability")));
  EXPECT_THAT(Parse(R"(vmm_capabilities = ["nope"])"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vmm_capabilities")));
  EXPECT_THAT(Parse(R"(vmm_capabilities = ["all", "net_admin"])"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("alone")));
  EXPECT_THAT(Parse(R"(vmm_capabilities = "net_admin")"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(VmmCapabilitiesTest, Argv) {
  VmmCapabilities caps;
  caps.keep = {"net_admin", "ipc_lock"};
  EXPECT_THAT(WithCapabilities(caps, "/usr/bin/setpriv", {"qemu", "-S"}),
              ElementsAre("/usr/bin/setpriv", "--bounding-set=-all,+net_admin,+ipc_lock",
                          "--inh-caps=-all", "--ambient-caps=-all", "--no-new-privs", "--",
                          "qemu", "-S"));
  caps.keep_all = true;
  EXPECT_THAT(WithCapabilities(caps, "", {"qemu", "-S"}), ElementsAre("qemu", "-S"));
  EXPECT_EQ(CapabilityBit("chown"), 0);
  EXPECT_EQ(CapabilityBit("net_admin"), 12);
  EXPECT_EQ(CapabilityBit("checkpoint_restore"), 40);
  EXPECT_EQ(CapabilityBit("bogus"), -1);
}

std::optional<std::string> StatusField(pid_t pid, std::string_view field) {
  std::ifstream in(absl::StrFormat("/proc/%d/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(std::string(field) + ":", 0) == 0) {
      std::string v = line.substr(field.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return std::nullopt;
}

// A process spawned as the VMM drivers spawn theirs, with the default set.
TEST(VmmCapabilitiesTest, SpawnedVmmKeepsOnlyWhatIsConfigured) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: the point is what root gives up";
  VmmCapabilities caps;  // default: net_admin
  if (!FindSetpriv(caps).ok()) GTEST_SKIP() << FindSetpriv(caps).status().message();
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::thread t([&] { io.run(); });
  VmmSpawnParams params{{KUASAR_TESTINIT_PATH, "sleep", "30"}, "", "", caps};
  auto p = VmmProcess::Spawn(io, params);
  ASSERT_OK(p);
  pid_t pid = (*p)->identity().pid;
  // setpriv execs the program in place: wait for the exec (the name changes).
  std::optional<std::string> eff;
  for (int i = 0; i < 200; ++i) {
    std::optional<std::string> name = StatusField(pid, "Name");
    if (name && *name != "setpriv") {
      eff = StatusField(pid, "CapEff");
      break;
    }
    ::usleep(10'000);
  }
  ASSERT_TRUE(eff.has_value()) << "the program never replaced setpriv";
  uint64_t effective = 0, bounding = 0;
  ASSERT_TRUE(absl::SimpleHexAtoi(*eff, &effective));
  ASSERT_TRUE(absl::SimpleHexAtoi(StatusField(pid, "CapBnd").value_or("x"), &bounding));
  EXPECT_EQ(effective, uint64_t{1} << 12) << "CapEff " << *eff;
  EXPECT_EQ(bounding, uint64_t{1} << 12);
  EXPECT_EQ(StatusField(pid, "NoNewPrivs"), "1");
  EXPECT_EQ(StatusField(pid, "CapInh"), "0000000000000000");
  EXPECT_OK((*p)->Kill());
  work.reset();
  t.join();
}

}  // namespace
}  // namespace kuasar::vmm
