#include "runtime/oci/oom_watcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <gtest/gtest.h>

#include "absl/strings/str_format.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/child_process.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/base/unique_fd.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

// Polls `pred` until true or `timeout`.
template <typename Pred>
bool Eventually(Pred pred, absl::Duration timeout = absl::Seconds(10)) {
  absl::Time deadline = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

class OomWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override { io_thread_ = std::thread([this] { io_.run(); }); }
  void TearDown() override {
    work_.reset();
    io_.stop();
    io_thread_.join();
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  std::thread io_thread_;
};

// cgroup v2 logic on a fake unified tree: inotify on a regular memory.events file.
TEST_F(OomWatcherTest, V2CountsOomKillsOnAFakeTree) {
  TempDir dir("koom");
  std::string cg = dir.Sub("cg");
  std::filesystem::create_directories(cg + "/k8s.io/c1");
  ASSERT_OK(WriteFileAtomically(dir.Sub("mountinfo"),
                                absl::StrFormat("41 22 0:38 / %s rw - cgroup2 cgroup2 rw\n", cg)));
  ASSERT_OK(WriteFileAtomically(cg + "/cgroup.controllers", "memory pids\n"));
  std::string events = cg + "/k8s.io/c1/memory.events";
  // In place, as the kernel does (a rename would replace the watched inode).
  auto set_kills = [&](int n) {
    UniqueFd fd(::open(events.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    std::string text = absl::StrFormat("low 0\nhigh 0\nmax 5\noom 2\noom_kill %d\n", n);
    ASSERT_EQ(::write(fd.get(), text.data(), text.size()), static_cast<ssize_t>(text.size()));
  };
  set_kills(1);  // kills before the watch do not count
  CgroupSources sources;
  sources.mountinfo = dir.Sub("mountinfo");
  sources.self_cgroup = dir.Sub("none");
  sources.unified_root = cg;
  auto h = CgroupHierarchy::Load(sources);
  ASSERT_OK(h);
  ASSERT_EQ(h->mode(), CgroupMode::kV2);

  OomWatcher watcher(io_, &*h);
  std::atomic<int> a{0}, b{0};
  ASSERT_OK(watcher.Watch("a", "/k8s.io/c1", [&] { ++a; }));
  ASSERT_OK(watcher.Watch("b", "/k8s.io/c1", [&] { ++b; }));  // same file, second key
  set_kills(2);
  EXPECT_TRUE(Eventually([&] { return a == 1 && b == 1; })) << a << " " << b;
  set_kills(4);  // two kills between reads: two callbacks
  EXPECT_TRUE(Eventually([&] { return a == 3 && b == 3; })) << a << " " << b;
  watcher.Unwatch("a");
  set_kills(5);
  EXPECT_TRUE(Eventually([&] { return b == 4; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(a, 3);
  // The cgroup goes away: the watch ends (IN_IGNORED) and a new file does not revive it.
  ASSERT_EQ(::unlink(events.c_str()), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  set_kills(9);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(b, 4);

  EXPECT_THAT(watcher.Watch("c", "/k8s.io/none", [] {}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/k8s.io/none")));
}

// The real host: a process allocating past a 16 MiB limit is OOM-killed.
class HostOomTest : public OomWatcherTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (creates cgroups)";
    auto h = CgroupHierarchy::Host();
    ASSERT_OK(h);
    host_ = *h;
    OomWatcherTest::SetUp();
    ASSERT_OK(host_->Create(path_));
    auto mem = host_->ControllerPath("memory", path_);
    ASSERT_OK(mem);
    if (host_->mode() == CgroupMode::kV1) {
      ASSERT_OK(WriteLimit(*mem + "/memory.limit_in_bytes", "16777216"));
    } else {
      ASSERT_OK(WriteLimit(*mem + "/memory.max", "16777216"));
      (void)WriteLimit(*mem + "/memory.swap.max", "0");
    }
  }
  void TearDown() override {
    if (host_ == nullptr) return;
    OomWatcherTest::TearDown();
    EXPECT_OK(host_->Remove(path_));
  }
  static absl::Status WriteLimit(const std::string& path, const std::string& value) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd || ::write(fd.get(), value.data(), value.size()) < 0) {
      return absl::InternalError("write " + path);
    }
    return absl::OkStatus();
  }
  // Runs kuasar-testinit in the cgroup touching 64 MiB (one process, so it is the one the
  // OOM killer picks); returns its wait status.
  int RunHog() {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    UniqueFd r(p[0]), w(p[1]);
    SpawnOptions o;
    o.stdin_fd = r.get();
    auto hog = ChildProcess::Spawn(
        {"/bin/sh", "-c", "read x; exec \"$0\" alloc 64", KUASAR_TESTINIT_PATH}, o);
    EXPECT_OK(hog);
    if (!hog.ok()) return -1;
    EXPECT_OK(host_->AddProcess(path_, hog->pid()));
    w.Reset();  // go
    auto st = hog->WaitFor(std::chrono::seconds(30));
    EXPECT_OK(st);
    return st.ok() ? *st : -1;
  }

  const CgroupHierarchy* host_ = nullptr;
  std::string path_ = absl::StrFormat("/kuasar-oom-%d", ::getpid());
};

TEST_F(HostOomTest, FiresOnOomKillAndStopsAfterUnwatch) {
  OomWatcher watcher(io_);
  std::atomic<int> ooms{0};
  ASSERT_OK(watcher.Watch("c1", path_, [&] { ++ooms; }));
  int st = RunHog();
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << "hog was not OOM-killed: " << st;
  EXPECT_TRUE(Eventually([&] { return ooms >= 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const int seen = ooms;

  watcher.Unwatch("c1");
  st = RunHog();
  EXPECT_TRUE(WIFSIGNALED(st)) << st;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(ooms, seen);
}

TEST_F(HostOomTest, WatchEndsWhenCgroupIsRemoved) {
  OomWatcher watcher(io_);
  std::atomic<int> ooms{0};
  std::string sub = path_ + "/gone";
  ASSERT_OK(host_->Create(sub));
  ASSERT_OK(watcher.Watch("gone", sub, [&] { ++ooms; }));
  ASSERT_OK(host_->Remove(sub));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(ooms, 0);  // removal wakes the v1 eventfd; that is not an OOM
  watcher.Unwatch("gone");
}

TEST_F(HostOomTest, MissingCgroupIsNotFound) {
  OomWatcher watcher(io_);
  EXPECT_THAT(watcher.Watch("x", path_ + "/does-not-exist", [] {}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("does-not-exist")));
}

}  // namespace
}  // namespace kuasar
