#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "runtime/base/status_matchers.h"
#include "runtime/sandboxers/appkernel/appkernel_backend.h"
#include "runtime/sandboxers/appkernel/pod_sandbox_spec.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::StatusOr<Config> Load(const std::string& toml) {
  return ParseConfig("[sandboxer]\nkind = \"appkernel\"\nstate_dir = \"/run/ak\"\n" + toml,
                     "appkernel.toml");
}

TEST(AppKernelConfig, Defaults) {
  auto c = Load("");
  ASSERT_OK(c);
  auto a = ParseAppKernelConfig(*c);
  ASSERT_OK(a);
  EXPECT_EQ(a->runtime, "runsc");
  EXPECT_EQ(a->root, "/run/ak/runsc");
  EXPECT_TRUE(a->waiter.ends_with("/kuasar-appkernel-wait"));
  EXPECT_TRUE(a->pause.ends_with("/kuasar-appkernel-pause"));
  EXPECT_EQ(a->pod.pod_cgroup_parent, "/kuasar");
  EXPECT_THAT(RunscGlobalFlags(*a), ElementsAre("--platform=systrap", "--network=sandbox"));
  EXPECT_EQ(AppKernelRuntimeProblem(*a), "");
}

TEST(AppKernelConfig, Keys) {
  auto c = Load(
      "[appkernel]\nruntime = \"/opt/kuasar-tools/bin/runsc\"\nroot = \"/r\"\n"
      "platform = \"ptrace\"\nnetwork = \"none\"\nflags = [\"--ignore-cgroups\", "
      "\"--overlay2=none\"]\npod_cgroup_parent = \"/g\"\n");
  ASSERT_OK(c);
  auto a = ParseAppKernelConfig(*c);
  ASSERT_OK(a);
  EXPECT_EQ(a->runtime, "/opt/kuasar-tools/bin/runsc");
  EXPECT_EQ(a->root, "/r");
  EXPECT_EQ(a->pod.pod_cgroup_parent, "/g");
  EXPECT_THAT(RunscGlobalFlags(*a), ElementsAre("--platform=ptrace", "--network=none",
                                                "--ignore-cgroups", "--overlay2=none"));
}

TEST(AppKernelConfig, ErrorsNameTheKey) {
  struct Case {
    const char* toml;
    const char* key;
  } cases[] = {
      {"[appkernel]\nplatform = \"kvmx\"\n", "appkernel.platform"},
      {"[appkernel]\nnetwork = \"bridge\"\n", "appkernel.network"},
      {"[appkernel]\nroot = \"rel\"\n", "appkernel.root"},
      {"[appkernel]\nflags = [\"debug\"]\n", "appkernel.flags"},
      {"[appkernel]\nflags = [\"--root=/x\"]\n", "appkernel.flags"},
      {"[appkernel]\nflags = \"--debug\"\n", "appkernel.flags"},
      {"[appkernel]\nruntim = \"runsc\"\n", "appkernel.runtim"},
  };
  for (const Case& k : cases) {
    auto c = Load(k.toml);
    ASSERT_OK(c);
    EXPECT_THAT(ParseAppKernelConfig(*c),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(k.key)))
        << k.toml;
  }
}

TEST(AppKernelConfig, QuarkIsRefusedWithTheReason) {
  auto c = Load("[appkernel]\nruntime = \"quark\"\n");
  ASSERT_OK(c);
  auto a = ParseAppKernelConfig(*c);
  ASSERT_OK(a);
  EXPECT_THAT(AppKernelRuntimeProblem(*a), HasSubstr("Quark is not available in this build"));
  AppKernelBackend backend;
  BackendContext ctx;
  ctx.config = &*c;
  ctx.sandboxes_dir = "/nonexistent/sandboxes";
  EXPECT_THAT(backend.Init(ctx), StatusIs(absl::StatusCode::kFailedPrecondition,
                                          HasSubstr("runtime = \"runsc\"")));
}

TEST(RunscEngine, RefusesADynamicallyLinkedRunsc) {
  char dir[] = "/tmp/ak-engine.XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  // /bin/true is dynamically linked on Debian; kuasar-holder is static (a stand-in runsc).
  EXPECT_THAT(RunscEngine::Make({"/bin/true", std::string(dir) + "/r", {}, "/bin/true"}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("/bin/true is dynamically linked")));
  EXPECT_OK(RunscEngine::Make({KUASAR_HOLDER_PATH, std::string(dir) + "/r", {}, "/bin/true"}));
  std::filesystem::remove_all(dir);
}

TEST(PodSandboxSpec, JoinsThePodNetnsAndRunsPause) {
  nlohmann::json s = PodSandboxSpec({"pod1", "/st/pause", "/proc/42/ns/net", "web"});
  EXPECT_EQ(s["process"]["args"], nlohmann::json::array({"/pause"}));
  EXPECT_EQ(s["root"]["path"], "/st/pause");
  EXPECT_TRUE(s["root"]["readonly"].get<bool>());
  EXPECT_EQ(s["hostname"], "web");
  EXPECT_EQ(s["annotations"][kCriContainerType], "sandbox");
  EXPECT_EQ(s["annotations"][kCriSandboxId], "pod1");
  int network = 0;
  for (const auto& ns : s["linux"]["namespaces"]) {
    if (ns["type"] == "network") {
      ++network;
      EXPECT_EQ(ns["path"], "/proc/42/ns/net");
    } else {
      EXPECT_FALSE(ns.contains("path")) << ns.dump();
    }
  }
  EXPECT_EQ(network, 1);
  nlohmann::json host = PodSandboxSpec({"pod1", "/st/pause", "", "h"});
  for (const auto& ns : host["linux"]["namespaces"]) EXPECT_FALSE(ns.contains("path"));
}

TEST(PodSandboxSpec, SandboxToJoinReadsTheCriAnnotations) {
  auto spec = [](nlohmann::json ann) { return nlohmann::json{{"annotations", ann}}; };
  EXPECT_EQ(*SandboxToJoin(nlohmann::json::object()), "");
  EXPECT_EQ(*SandboxToJoin(spec({{kCriContainerType, "sandbox"}, {kCriSandboxId, "p"}})), "");
  EXPECT_EQ(*SandboxToJoin(spec({{kCriContainerType, "container"}, {kCriSandboxId, "p1"}})), "p1");
  EXPECT_THAT(SandboxToJoin(spec({{kCriContainerType, "container"}})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(kCriSandboxId)));
  EXPECT_THAT(SandboxToJoin(spec({{kCriContainerType, "container"}, {kCriSandboxId, "../x"}})),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SandboxToJoin(spec({{kCriContainerType, "pod"}})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"pod\"")));
}

}  // namespace
}  // namespace kuasar
