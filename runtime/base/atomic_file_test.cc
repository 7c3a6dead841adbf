#include "runtime/base/atomic_file.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include <gtest/gtest.h>

#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

TEST(AtomicFileTest, WritesAndReadsBack) {
  TempDir dir;
  std::string path = dir.Sub("a.json");
  ASSERT_OK(WriteFileAtomically(path, "{\"x\":1}"));
  auto got = ReadSmallFile(path);
  ASSERT_OK(got);
  EXPECT_EQ(*got, "{\"x\":1}");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_OK(WriteFileAtomically(path, "second"));
  EXPECT_EQ(*ReadSmallFile(path), "second");
  // No temp files left behind.
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++n;
  }
  EXPECT_EQ(n, 1);
}

TEST(AtomicFileTest, ReadRefusesSymlinkAndOversize) {
  TempDir dir;
  ASSERT_OK(WriteFileAtomically(dir.Sub("real"), std::string(100, 'x')));
  ASSERT_EQ(::symlink(dir.Sub("real").c_str(), dir.Sub("link").c_str()), 0);
  EXPECT_THAT(ReadSmallFile(dir.Sub("link")), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ReadSmallFile(dir.Sub("real"), 10),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("limit")));
  EXPECT_THAT(ReadSmallFile(dir.Sub("missing")), StatusIs(absl::StatusCode::kNotFound));
}

TEST(AtomicFileTest, MissingDirectoryIsAClearError) {
  EXPECT_THAT(WriteFileAtomically("/nonexistent-kuasar/x", "y"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent-kuasar")));
}

// A writer killed with SIGKILL at a random moment leaves the old or the new
// contents, never a torn file.
TEST(AtomicFileTest, KillDuringWriteLeavesOldOrNew) {
  TempDir dir;
  std::string path = dir.Sub("state.json");
  const std::string a(256 * 1024, 'a');
  const std::string b(256 * 1024, 'b');
  ASSERT_OK(WriteFileAtomically(path, a));
  std::mt19937 rng(42);
  for (int round = 0; round < 30; ++round) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int i = 0;; ++i) {
        if (!WriteFileAtomically(path, (i % 2) ? a : b).ok()) _exit(1);
      }
    }
    ::usleep(std::uniform_int_distribution<int>(0, 20000)(rng));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "writer failed on its own";
    auto got = ReadSmallFile(path, 1 << 20);
    ASSERT_OK(got);
    ASSERT_TRUE(*got == a || *got == b) << "torn file of " << got->size() << " bytes";
  }
}

}  // namespace
}  // namespace kuasar
