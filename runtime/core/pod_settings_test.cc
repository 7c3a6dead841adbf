#include "runtime/core/pod_settings.h"

#include <gtest/gtest.h>

#include "cri/v1/api.pb.h"
#include "runtime/base/status_matchers.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

std::string Config(const std::function<void(runtime::v1::PodSandboxConfig&)>& fill) {
  runtime::v1::PodSandboxConfig c;
  fill(c);
  return c.SerializeAsString();
}

TEST(PodSettingsTest, DecodesWhatContainerdSends) {
  std::string bytes = Config([](auto& c) {
    c.mutable_metadata()->set_name("web");
    c.set_hostname("web-1");
    c.mutable_dns_config()->add_servers("10.0.0.10");
    c.mutable_dns_config()->add_searches("svc.cluster.local");
    auto* ns = c.mutable_linux()->mutable_security_context()->mutable_namespace_options();
    ns->set_network(runtime::v1::NODE);
    ns->set_pid(runtime::v1::CONTAINER);
    (*c.mutable_linux()->mutable_sysctls())["kernel.shm_rmid_forced"] = "1";
    c.mutable_linux()->set_cgroup_parent("/kubepods/pod1");
  });
  auto s = DecodePodSettings("runtime.v1.PodSandboxConfig", bytes);
  ASSERT_OK(s);
  EXPECT_EQ(s->name, "web");
  EXPECT_EQ(s->hostname, "web-1");
  EXPECT_TRUE(s->host_network);
  EXPECT_FALSE(s->host_ipc);
  EXPECT_FALSE(s->shared_pid);
  EXPECT_EQ(s->cgroup_parent, "/kubepods/pod1");
  EXPECT_EQ(s->sysctls.at("kernel.shm_rmid_forced"), "1");
  EXPECT_EQ(PodSettings::FromJson(s->ToJson()).ToJson(), s->ToJson());
  // The prefixed form of the type URL is accepted too; no options means defaults.
  EXPECT_OK(DecodePodSettings("type.googleapis.com/runtime.v1.PodSandboxConfig", bytes));
  auto d = DecodePodSettings("", "");
  ASSERT_OK(d);
  EXPECT_FALSE(d->shared_pid);
}

TEST(PodSettingsTest, DefaultNamespaceModeIsPodWide) {
  // CRI's zero value is POD: a pod without options shares one PID namespace.
  auto s = DecodePodSettings("runtime.v1.PodSandboxConfig", Config([](auto&) {}));
  ASSERT_OK(s);
  EXPECT_TRUE(s->shared_pid);
}

TEST(PodSettingsTest, RejectsWhatCouldTouchTheNode) {
  EXPECT_THAT(DecodePodSettings("runtime.v1.ContainerConfig", ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("PodSandboxConfig")));
  EXPECT_THAT(DecodePodSettings("runtime.v1.PodSandboxConfig", "\xff\xff\xff"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("malformed")));
  auto with_sysctl = [](std::string key, bool host_net = false) {
    return Config([&](auto& c) {
      (*c.mutable_linux()->mutable_sysctls())[key] = "1";
      if (host_net) {
        c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
            runtime::v1::NODE);
      }
    });
  };
  EXPECT_THAT(DecodePodSettings("runtime.v1.PodSandboxConfig", with_sysctl("kernel.panic")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a namespaced")));
  EXPECT_THAT(DecodePodSettings("runtime.v1.PodSandboxConfig", with_sysctl("net/../../x")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("malformed")));
  EXPECT_THAT(DecodePodSettings("runtime.v1.PodSandboxConfig",
                                with_sysctl("net.ipv4.ip_forward", /*host_net=*/true)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("host network")));
  EXPECT_OK(DecodePodSettings("runtime.v1.PodSandboxConfig", with_sysctl("net.ipv4.ip_forward")));
  EXPECT_THAT(DecodePodSettings("runtime.v1.PodSandboxConfig", Config([](auto& c) {
                                  c.set_hostname("a/b");
                                })),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("hostname")));
}

}  // namespace
}  // namespace kuasar
