#include "runtime/oci/oci_spec.h"

#include <gtest/gtest.h>

#include "runtime/base/status_matchers.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

TEST(OciSpecTest, ReadsWhatTheSandboxerNeeds) {
  auto s = OciSpec::Parse(R"({"ociVersion":"1.3.0","process":{"terminal":true,"args":["sh"],
      "cwd":"/"},"root":{"path":"rootfs"},"mounts":[{"destination":"/proc","type":"proc"}],
      "annotations":{"io.kubernetes.cri.container-type":"container"},
      "linux":{"cgroupsPath":"/k8s.io/abc"}})");
  ASSERT_OK(s);
  EXPECT_TRUE(s->terminal());
  EXPECT_EQ(s->cgroups_path(), "/k8s.io/abc");
  EXPECT_EQ(s->annotation("io.kubernetes.cri.container-type"), "container");
  EXPECT_EQ(s->annotation("missing"), "");
  EXPECT_TRUE(s->HasMountAt("/proc"));
  s->AddBindMount("/run/x/hosts", "/etc/hosts", true);
  s->AddBindMount("/run/y/hosts", "/etc/hosts", false);  // already there: kept
  EXPECT_TRUE(s->HasMountAt("/etc/hosts"));
  EXPECT_EQ(s->doc()["mounts"].size(), 2u);
  EXPECT_EQ(s->doc()["mounts"][1]["source"], "/run/x/hosts");
}

TEST(OciSpecTest, DropsNamespacesJoinedByPath) {
  auto s = OciSpec::Parse(R"({"ociVersion":"1.1.0","linux":{"namespaces":[
      {"type":"pid"},{"type":"network","path":"/proc/7/ns/net"},{"type":"mount"},
      {"type":"ipc","path":"/proc/7/ns/ipc"}]}})");
  ASSERT_OK(s);
  EXPECT_EQ(s->DropJoinedNamespaces(), 2);
  EXPECT_EQ(s->doc()["linux"]["namespaces"].size(), 2u);
  EXPECT_EQ(s->doc()["linux"]["namespaces"][0]["type"], "pid");
  EXPECT_EQ(s->DropJoinedNamespaces(), 0);
}

TEST(OciSpecTest, TakesNetSysctlsOfAJoinedNetworkNamespace) {
  auto s = OciSpec::Parse(R"({"ociVersion":"1.1.0","linux":{
      "namespaces":[{"type":"network","path":"/var/run/netns/cni-1"},{"type":"pid"}],
      "sysctl":{"net.ipv4.ip_unprivileged_port_start":"0","kernel.shmmax":"1"}}})");
  ASSERT_OK(s);
  EXPECT_TRUE(s->JoinsNamespace("network"));
  EXPECT_FALSE(s->JoinsNamespace("pid"));
  auto net = s->TakeSysctls("net.");
  ASSERT_EQ(net.size(), 1u);
  EXPECT_EQ(net["net.ipv4.ip_unprivileged_port_start"], "0");
  EXPECT_EQ(s->doc()["linux"]["sysctl"].size(), 1u);
  EXPECT_TRUE(s->TakeSysctls("net.").empty());
}

TEST(OciSpecTest, RejectsMalformedShapesNamingTheField) {
  EXPECT_THAT(OciSpec::Parse("not json"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(OciSpec::Parse("[]"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(OciSpec::Parse(R"({"ociVersion":1})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ociVersion")));
  EXPECT_THAT(OciSpec::Parse(R"({"ociVersion":"1","process":{"args":[]}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("process.args")));
  EXPECT_THAT(OciSpec::Parse(R"({"ociVersion":"1","process":{"args":["a"],"cwd":"rel"}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("process.cwd")));
  EXPECT_THAT(OciSpec::Parse(R"({"ociVersion":"1","mounts":[{"type":"bind"}]})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("destination")));
  EXPECT_THAT(OciSpec::Parse(R"({"ociVersion":"1","linux":{"cgroupsPath":5}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cgroupsPath")));
  EXPECT_THAT(OciSpec::Parse(std::string(5 << 20, ' ')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("4 MiB")));
}

TEST(OciSpecTest, ValidatesExecProcess) {
  bool terminal = false;
  EXPECT_OK(ValidateProcessJson(R"({"args":["ls"],"terminal":true,"cwd":"/"})", &terminal));
  EXPECT_TRUE(terminal);
  EXPECT_THAT(ValidateProcessJson(R"({"args":"ls"})", &terminal),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateProcessJson("{", &terminal), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kuasar
