#include "runtime/base/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include "runtime/base/atomic_file.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;

TEST(ChildProcessTest, ReportsExitCode) {
  auto child = ChildProcess::Spawn({"sh", "-c", "exit 7"});
  ASSERT_OK(child);
  auto st = child->Wait();
  ASSERT_OK(st);
  EXPECT_EQ(ExitCodeFromWaitStatus(*st), 7);
}

TEST(ChildProcessTest, ArgumentsAreNotShellInterpreted) {
  TempDir dir;
  std::string out = dir.Sub("out");
  int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  SpawnOptions opts;
  opts.stdout_fd = fd;
  auto child = ChildProcess::Spawn({"echo", "$(id)", ";", "rm -rf /"}, opts);
  ::close(fd);
  ASSERT_OK(child);
  ASSERT_OK(child->Wait());
  EXPECT_EQ(*ReadSmallFile(out), "$(id) ; rm -rf /\n");
}

TEST(ChildProcessTest, WaitForTimesOutThenSignalReaps) {
  auto child = ChildProcess::Spawn({"sleep", "30"});
  ASSERT_OK(child);
  EXPECT_THAT(child->WaitFor(std::chrono::milliseconds(50)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  ASSERT_OK(child->Signal(SIGTERM));
  auto st = child->WaitFor(std::chrono::seconds(5));
  ASSERT_OK(st);
  EXPECT_EQ(ExitCodeFromWaitStatus(*st), 128 + SIGTERM);
}

TEST(ChildProcessTest, MissingBinaryIsNotFound) {
  EXPECT_THAT(ChildProcess::Spawn({"/nonexistent/kuasar-bin"}),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(ChildProcessTest, DestructorKillsAndReaps) {
  pid_t pid;
  {
    auto child = ChildProcess::Spawn({"sleep", "30"});
    ASSERT_OK(child);
    pid = child->pid();
  }
  // Reaped: waitpid has nothing left to collect for that pid.
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

}  // namespace
}  // namespace kuasar
