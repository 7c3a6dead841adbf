#include "runtime/base/id_check.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"

namespace kuasar {
namespace {

using ::kuasar::testing::IsOk;
using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(IdCheckTest, AcceptsContainerdStyleIds) {
  EXPECT_OK(ValidateId("a"));
  EXPECT_OK(ValidateId("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
  EXPECT_OK(ValidateId("pod-1_x.y"));
  EXPECT_OK(ValidateId(std::string(128, 'z')));
}

TEST(IdCheckTest, RejectsTraversalEmptyAndOverlong) {
  EXPECT_THAT(ValidateId("", "sandbox id"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sandbox id is empty")));
  EXPECT_THAT(ValidateId("../x"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateId(".."), Not(IsOk()));
  EXPECT_THAT(ValidateId("a/../../etc"), Not(IsOk()));
  EXPECT_THAT(ValidateId("/abs"), Not(IsOk()));
  EXPECT_THAT(ValidateId(".hidden"), Not(IsOk()));
  EXPECT_THAT(ValidateId("-flag"), Not(IsOk()));
  EXPECT_THAT(ValidateId(std::string("a\0b", 3)), Not(IsOk()));
  EXPECT_THAT(ValidateId("a b"), Not(IsOk()));
  EXPECT_THAT(ValidateId(std::string(129, 'z')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("129 bytes")));
}

TEST(IdCheckTest, PathUnderStaysInRoot) {
  auto p = PathUnder("/run/kuasar", "abc");
  ASSERT_OK(p);
  EXPECT_EQ(*p, "/run/kuasar/abc");
  EXPECT_THAT(PathUnder("/run/kuasar", "../etc"), Not(IsOk()));
}

TEST(IdCheckTest, RefusesPlantedSymlink) {
  TempDir dir;
  ASSERT_EQ(::symlink("/etc", dir.Sub("evil").c_str()), 0);
  EXPECT_THAT(CheckRealDirectory(dir.Sub("evil")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("symlink")));
  EXPECT_THAT(EnsurePrivateDirectory(dir.Sub("evil")), Not(IsOk()));
  EXPECT_OK(EnsurePrivateDirectory(dir.Sub("good")));
  struct stat st {};
  ASSERT_EQ(::stat(dir.Sub("good").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

}  // namespace
}  // namespace kuasar
