#include "runtime/oci/rootfs_mount.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;

TEST(MountOptionsTest, TranslatesFlagsAndKeepsData) {
  auto o = ParseMountOptions({"ro", "nosuid", "rbind", "rprivate", "lowerdir=/a", "rw", "size=1m"});
  ASSERT_OK(o);
  EXPECT_EQ(o->flags & MS_RDONLY, 0u);  // "rw" after "ro" clears it
  EXPECT_NE(o->flags & MS_NOSUID, 0u);
  EXPECT_NE(o->flags & MS_BIND, 0u);
  EXPECT_NE(o->propagation & MS_PRIVATE, 0u);
  EXPECT_EQ(o->data, (std::vector<std::string>{"lowerdir=/a", "size=1m"}));
  EXPECT_THAT(ParseMountOptions({"X-containerd.mkdir.path=/x"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

class RootfsMountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (mount)";
  }
  TempDir dir_;
};

TEST_F(RootfsMountTest, OverlayMountsAndUnmounts) {
  for (const char* d : {"lower", "upper", "work", "target"}) ::mkdir(dir_.Sub(d).c_str(), 0755);
  std::ofstream(dir_.Sub("lower/file")) << "from-lower";
  ASSERT_OK(MountRootfs({{"overlay", "overlay", "",
                          {"lowerdir=" + dir_.Sub("lower"), "upperdir=" + dir_.Sub("upper"),
                           "workdir=" + dir_.Sub("work")}}},
                        dir_.Sub("target")));
  std::string got;
  std::ifstream(dir_.Sub("target/file")) >> got;
  EXPECT_EQ(got, "from-lower");
  ASSERT_OK(UnmountAll(dir_.Sub("target")));
  EXPECT_NE(::access(dir_.Sub("target/file").c_str(), F_OK), 0);
  ASSERT_OK(UnmountAll(dir_.Sub("target")));  // idempotent
}

TEST_F(RootfsMountTest, LongOverlayOptionsAreShortened) {
  // 60 lowerdirs under a long common parent (as snapshotter paths are) push the options
  // past a page; relative to that parent they fit.
  std::string lowers;
  std::string base = dir_.Sub("io.containerd.snapshotter.v1.overlayfs-" + std::string(60, 's'));
  ::mkdir(base.c_str(), 0755);
  base += "/snapshots";
  ::mkdir(base.c_str(), 0755);
  for (int i = 0; i < 60; ++i) {
    std::string d = base + "/" + std::to_string(i);
    ::mkdir(d.c_str(), 0755);
    lowers += (i ? ":" : "") + d;
  }
  for (const char* d : {"upper", "work", "target"}) ::mkdir(dir_.Sub(d).c_str(), 0755);
  ASSERT_GT(lowers.size(), 4096u);
  ASSERT_OK(MountRootfs({{"overlay", "overlay", "",
                          {"lowerdir=" + lowers, "upperdir=" + dir_.Sub("upper"),
                           "workdir=" + dir_.Sub("work")}}},
                        dir_.Sub("target")));
  ASSERT_OK(UnmountAll(dir_.Sub("target")));
}

TEST_F(RootfsMountTest, FailureIsClearAndLeavesNothingMounted) {
  ::mkdir(dir_.Sub("target").c_str(), 0755);
  EXPECT_THAT(MountRootfs({{"overlay", "overlay", "", {"lowerdir=/nonexistent-kuasar"}}},
                          dir_.Sub("target")),
              StatusIs(absl::StatusCode::kNotFound, ::testing::HasSubstr("mount")));
}

}  // namespace
}  // namespace kuasar
