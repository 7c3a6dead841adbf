#include "runtime/shim/shim_args.h"

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "containerd/task/v3/shim.pb.h"
#include "runtime/base/temp_dir.h"
#include "runtime/shim/bundle_info.h"

namespace kuasar::shim {
namespace {

TEST(ShimArgsTest, ParsesContainerdStartCommandLine) {
  auto a = ParseShimArgs({"shim", "-namespace", "k8s.io", "-address", "/run/c.sock",
                          "-publish-binary", "/bin/containerd", "-id", "abc", "-debug", "start"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->action, "start");
  EXPECT_EQ(a->ns, "k8s.io");
  EXPECT_EQ(a->address, "/run/c.sock");
  EXPECT_EQ(a->id, "abc");
  EXPECT_TRUE(a->debug);
}

TEST(ShimArgsTest, AcceptsEqualsAndDoubleDash) {
  auto a = ParseShimArgs({"shim", "--id=x1", "-bundle=/b", "delete"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->id, "x1");
  EXPECT_EQ(a->bundle, "/b");
  EXPECT_EQ(a->action, "delete");
}

TEST(ShimArgsTest, RejectsBadInput) {
  EXPECT_FALSE(ParseShimArgs({"shim", "-id", "a"}).ok());                 // no action
  EXPECT_FALSE(ParseShimArgs({"shim", "-id"}).ok());                      // flag w/o value
  EXPECT_FALSE(ParseShimArgs({"shim", "-bogus", "1", "-id", "a", "start"}).ok());
  EXPECT_FALSE(ParseShimArgs({"shim", "-id", "a", "launch"}).ok());
  EXPECT_FALSE(ParseShimArgs({"shim", "start"}).ok());                    // no id
  EXPECT_FALSE(ParseShimArgs({"shim", "-id", "a", "-ready-fd", "1", "serve"}).ok());
}

TEST(ShimArgsTest, DeleteResponseDecodes) {
  ::containerd::task::v3::DeleteResponse r;
  ASSERT_TRUE(r.ParseFromString(EncodeDeleteResponse(7, 137)));
  EXPECT_EQ(r.pid(), 7u);
  EXPECT_EQ(r.exit_status(), 137u);
  EXPECT_GT(r.exited_at().seconds(), 1600000000);
}

TEST(ShimArgsTest, SocketPathFitsForLongIds) {
  ShimPaths p{"/run/kuasar-vmm-shim"};
  std::string id(64, 'a');
  EXPECT_LT(p.SocketPath(id).size(), 108u);
  EXPECT_NE(p.SocketPath(id), p.SocketPath(std::string(64, 'b')));
}

void WriteSpec(const std::string& dir, const std::string& json) {
  std::ofstream(dir + "/config.json") << json;
}

TEST(BundleInfoTest, SandboxAndContainer) {
  TempDir dir("bundle");
  WriteSpec(dir.path(), R"({"hostname":"pod1","annotations":{
      "io.kubernetes.cri.container-type":"sandbox"},
      "linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/var/run/netns/cni-1"}]}})");
  auto s = ReadBundleInfo(dir.path(), "sb1");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->is_sandbox);
  EXPECT_EQ(s->sandbox_id, "sb1");
  EXPECT_EQ(s->netns_path, "/var/run/netns/cni-1");
  EXPECT_EQ(s->hostname, "pod1");

  WriteSpec(dir.path(), R"({"annotations":{"io.kubernetes.cri.container-type":"container",
      "io.kubernetes.cri.sandbox-id":"sb1"}})");
  auto c = ReadBundleInfo(dir.path(), "c1");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->is_sandbox);
  EXPECT_EQ(c->sandbox_id, "sb1");
}

TEST(BundleInfoTest, RejectsBadSandboxIdsAndJunk) {
  TempDir dir("bundle");
  WriteSpec(dir.path(), R"({"annotations":{"io.kubernetes.cri.container-type":"container",
      "io.kubernetes.cri.sandbox-id":"../../etc"}})");
  EXPECT_FALSE(ReadBundleInfo(dir.path(), "c1").ok());
  WriteSpec(dir.path(), R"({"annotations":{"io.kubernetes.cri.container-type":"container"}})");
  EXPECT_FALSE(ReadBundleInfo(dir.path(), "c1").ok());
  WriteSpec(dir.path(), "not json");
  EXPECT_FALSE(ReadBundleInfo(dir.path(), "c1").ok());
  EXPECT_FALSE(ReadBundleInfo(dir.path() + "/missing", "c1").ok());
}

}  // namespace
}  // namespace kuasar::shim
