#include <gtest/gtest.h>

#include "runtime/sandboxers/vmm/common/kernel_cmdline.h"
#include "runtime/base/status_matchers.h"

namespace kuasar::vmm {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(KernelCmdlineTest, GuestDefaults) {
  GuestBootOptions options;
  options.share_fs = "virtiofs";
  auto line = KernelCmdline::ForGuest(options).Build();
  ASSERT_OK(line);
  EXPECT_THAT(*line, HasSubstr("console=ttyS0 panic=-1 reboot=k quiet"));
  EXPECT_THAT(*line, HasSubstr("task.sharefs_type=virtiofs"));
  EXPECT_THAT(*line, HasSubstr("task.log_level=info"));
  GuestBootOptions verbose;
  verbose.debug = true;
  auto debug = KernelCmdline::ForGuest(verbose).Build();
  ASSERT_OK(debug);
  EXPECT_THAT(*debug, Not(HasSubstr("quiet")));
  EXPECT_THAT(*debug, HasSubstr("task.log_level=debug"));
  EXPECT_THAT(*debug, Not(HasSubstr("sharefs")));
}

TEST(KernelCmdlineTest, SetReplacesInPlace) {
  KernelCmdline c;
  c.Set("a", "1").Flag("quiet").Set("b", "2").Set("a", "3");
  EXPECT_EQ(*c.Build(), "a=3 quiet b=2");
  c.Remove("quiet").Flag("x").Flag("x");
  EXPECT_EQ(*c.Build(), "a=3 b=2 x");
  EXPECT_EQ(c.Get("b"), "2");
  EXPECT_EQ(c.Get("x"), "");
  EXPECT_FALSE(c.Has("quiet"));
}

TEST(KernelCmdlineTest, MergeOverridesDefaultsAndKeepsRepeats) {
  KernelCmdline c = KernelCmdline::ForGuest({});
  ASSERT_OK(c.Merge("console=hvc0 console=hvc1 task.log_level=debug  foo=\"a b\" -- --extra 1"));
  auto line = c.Build();
  ASSERT_OK(line);
  EXPECT_THAT(*line, Not(HasSubstr("console=ttyS0")));
  EXPECT_THAT(*line, HasSubstr("console=hvc0 console=hvc1"));
  EXPECT_THAT(*line, HasSubstr("task.log_level=debug"));
  EXPECT_THAT(*line, Not(HasSubstr("task.log_level=info")));
  EXPECT_THAT(*line, HasSubstr("foo=\"a b\""));
  EXPECT_THAT(*line, ::testing::EndsWith(" -- --extra 1"));
}

TEST(KernelCmdlineTest, InitArgsComeLast) {
  KernelCmdline c;
  c.AddInitArg("--init").Set("quiet2", "1");
  EXPECT_EQ(*c.Build(), "quiet2=1 -- --init");
}

TEST(KernelCmdlineTest, Rejects) {
  KernelCmdline c;
  EXPECT_THAT(c.Merge("a=\"unbalanced"), StatusIs(absl::StatusCode::kInvalidArgument));
  KernelCmdline bad_value;
  bad_value.Set("k", "line\nbreak");
  EXPECT_THAT(bad_value.Build(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("k")));
  KernelCmdline long_line;
  long_line.Set("k", std::string(3000, 'x'));
  EXPECT_THAT(long_line.Build(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("2047")));
}

}  // namespace
}  // namespace kuasar::vmm
