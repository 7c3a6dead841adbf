// SharedBundle: config.json rewritten for the guest (pure), and, as root, a bundle shared
// into a shared dir and taken down again with nothing left mounted.
#include "runtime/sandboxers/vmm/backend/shared_bundle.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "runtime/base/atomic_file.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"

namespace kuasar {
namespace {

nlohmann::json CriLikeSpec() {
  return nlohmann::json::parse(R"({
    "ociVersion": "1.1.0",
    "process": {"args": ["sh"], "apparmorProfile": "cri-containerd.apparmor.d"},
    "root": {"path": "rootfs"},
    "hooks": {"prestart": [{"path": "/usr/bin/host-hook"}]},
    "mounts": [
      {"destination": "/proc", "type": "proc", "source": "proc"},
      {"destination": "/etc/hosts", "type": "bind", "source": "/var/lib/c/hosts", "options": ["rbind", "rw"]},
      {"destination": "/etc/resolv.conf", "type": "bind", "source": "/var/lib/c/resolv", "options": ["rbind"]},
      {"destination": "/etc/hostname", "source": "/var/lib/c/hostname", "options": ["bind"]},
      {"destination": "/dev/shm", "type": "bind", "source": "/run/c/shm", "options": ["rbind"]},
      {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro"]},
      {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}
    ],
    "linux": {"mountLabel": "system_u:object_r:container_file_t"}
  })");
}

TEST(RewriteSpecForGuest, MapsHostPathsToTheGuestsView) {
  auto g = RewriteSpecForGuest(CriLikeSpec(), "/run/kuasar/shared/c1");
  ASSERT_OK(g);
  const auto& s = g->spec;
  EXPECT_EQ(s["root"]["path"], "rootfs");
  EXPECT_FALSE(s["process"].contains("apparmorProfile"));
  EXPECT_FALSE(s["linux"].contains("mountLabel"));
  EXPECT_FALSE(s.contains("hooks"));
  std::vector<std::string> dests;
  for (const auto& m : s["mounts"]) dests.push_back(m["destination"]);
  EXPECT_EQ(dests, (std::vector<std::string>{"/proc", "/dev/shm", "/data", "/tmp"}));
  EXPECT_EQ(s["mounts"][1]["source"], "/dev/shm");
  EXPECT_EQ(s["mounts"][2]["source"], "/run/kuasar/shared/c1/mounts/0");
  ASSERT_EQ(g->binds.size(), 1u);
  EXPECT_EQ(g->binds[0].host_source, "/srv/data");
  EXPECT_EQ(g->binds[0].rel, "mounts/0");
  EXPECT_TRUE(g->binds[0].read_only);
}

TEST(RewriteSpecForGuest, AbsoluteRootBecomesRelative) {
  auto g =
      RewriteSpecForGuest(nlohmann::json::parse(R"({"root": {"path": "/host/rootfs"}})"), "/g");
  ASSERT_OK(g);
  EXPECT_EQ(g->spec["root"]["path"], "rootfs");
  EXPECT_FALSE(RewriteSpecForGuest(nlohmann::json::array(), "/g").ok());
}

class ShareBundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (mount)";
    dir_ = std::make_unique<TempDir>("shared-bundle");
    root_ = dir_->path();
    std::filesystem::create_directories(root_ + "/bundle/rootfs/etc");
    std::filesystem::create_directories(root_ + "/shared");
    std::filesystem::create_directories(root_ + "/vol");
    std::ofstream(root_ + "/bundle/rootfs/etc/os-release") << "fixture\n";
    std::ofstream(root_ + "/vol/file") << "volume\n";
    nlohmann::json spec = CriLikeSpec();
    spec["mounts"][5]["source"] = root_ + "/vol";
    ASSERT_OK(WriteFileAtomically(root_ + "/bundle/config.json", spec.dump()));
  }
  void TearDown() override {
    if (!root_.empty()) (void)UnmountTree(root_);
  }
  std::unique_ptr<TempDir> dir_;
  std::string root_;
};

TEST_F(ShareBundleTest, SharesRootfsConfigAndBindsThenUndoesThem) {
  ASSERT_OK(MakeSharedMountPoint(root_ + "/shared"));
  ASSERT_OK(MakeSharedMountPoint(root_ + "/shared"));  // idempotent
  // No rootfs mounts from containerd: the bundle's own rootfs dir is bound.
  auto guest = ShareBundle(root_ + "/shared", "/run/kuasar/shared", "c1", root_ + "/bundle", {});
  ASSERT_OK(guest);
  EXPECT_EQ(*guest, "/run/kuasar/shared/c1");
  const std::string c1 = root_ + "/shared/c1";
  EXPECT_TRUE(std::filesystem::exists(c1 + "/rootfs/etc/os-release"));
  EXPECT_TRUE(std::filesystem::exists(c1 + "/mounts/0/file"));
  EXPECT_EQ(::access((c1 + "/mounts/0/file").c_str(), W_OK), -1) << "a ro volume stays ro";
  auto cfg = ReadSmallFile(c1 + "/config.json");
  ASSERT_OK(cfg);
  auto j = nlohmann::json::parse(*cfg);
  EXPECT_EQ(j["mounts"][2]["source"], "/run/kuasar/shared/c1/mounts/0");
  auto mounts = MountPointsUnder(c1);
  ASSERT_OK(mounts);
  EXPECT_EQ(mounts->size(), 2u);

  ASSERT_OK(UnshareBundle(root_ + "/shared", "c1"));
  EXPECT_FALSE(std::filesystem::exists(c1));
  EXPECT_TRUE(std::filesystem::exists(root_ + "/vol/file")) << "the volume survives";
  EXPECT_TRUE(std::filesystem::exists(root_ + "/bundle/rootfs/etc/os-release"));
  ASSERT_OK(UnmountTree(root_ + "/shared"));
  mounts = MountPointsUnder(root_);
  ASSERT_OK(mounts);
  EXPECT_TRUE(mounts->empty());
}

TEST_F(ShareBundleTest, FailureLeavesNothingMounted) {
  nlohmann::json spec = CriLikeSpec();
  spec["mounts"][5]["source"] = root_ + "/does-not-exist";
  ASSERT_OK(WriteFileAtomically(root_ + "/bundle/config.json", spec.dump()));
  auto guest = ShareBundle(root_ + "/shared", "/g", "c2", root_ + "/bundle", {});
  EXPECT_FALSE(guest.ok());
  EXPECT_FALSE(std::filesystem::exists(root_ + "/shared/c2"));
  auto mounts = MountPointsUnder(root_);
  ASSERT_OK(mounts);
  EXPECT_TRUE(mounts->empty());
  EXPECT_FALSE(ShareBundle(root_ + "/shared", "/g", "../x", root_ + "/bundle", {}).ok());
}

}  // namespace
}  // namespace kuasar
