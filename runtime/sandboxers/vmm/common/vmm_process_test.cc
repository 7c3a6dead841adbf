#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "runtime/sandboxers/vmm/common/vmm_process.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/child_process.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"

namespace kuasar::vmm {
namespace {

using ::kuasar::testing::StatusIs;

class VmmProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    work_.reset();
    io_.stop();
    thread_.join();
  }
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::thread thread_;
};

TEST_F(VmmProcessTest, SpawnWatchesTheExitWithItsStatus) {
  auto p = VmmProcess::Spawn(io_, {{KUASAR_TESTINIT_PATH, "sleep", "30"}, "", ""});
  ASSERT_OK(p);
  EXPECT_GT((*p)->identity().pid, 0);
  EXPECT_GT((*p)->identity().start_time, 0u);
  EXPECT_TRUE((*p)->is_child());
  absl::Notification called;
  int seen = 0;
  (*p)->OnExit([&](const VmmProcess::Exit& e) {
    seen = e.wait_status;
    called.Notify();
  });
  EXPECT_THAT((*p)->WaitFor(absl::Milliseconds(50)), StatusIs(absl::StatusCode::kDeadlineExceeded));
  ASSERT_OK((*p)->Signal(SIGTERM));
  auto exit = (*p)->WaitFor(absl::Seconds(10));
  ASSERT_OK(exit);
  EXPECT_EQ(ExitCodeFromWaitStatus(exit->wait_status), 143);  // testinit: 128+SIGTERM
  ASSERT_TRUE(called.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(seen, exit->wait_status);
  EXPECT_OK((*p)->Kill());  // already gone: fine
}

TEST_F(VmmProcessTest, OutputGoesToTheLogAndLateOnExitStillRuns) {
  TempDir dir("vmmproc");
  auto p = VmmProcess::Spawn(io_, {{KUASAR_TESTINIT_PATH, "print", "hello"}, dir.Sub("log"), ""});
  ASSERT_OK(p);
  ASSERT_OK((*p)->WaitFor(absl::Seconds(10)));
  absl::Notification called;
  (*p)->OnExit([&](const VmmProcess::Exit& e) {
    EXPECT_EQ(ExitCodeFromWaitStatus(e.wait_status), 0);
    called.Notify();
  });
  EXPECT_TRUE(called.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(*ReadSmallFile(dir.Sub("log")), "hello\n");
}

TEST_F(VmmProcessTest, AttachSeesTheExitWithoutAStatus) {
  auto child = ChildProcess::Spawn({KUASAR_TESTINIT_PATH, "sleep", "30"});
  ASSERT_OK(child);
  auto id = IdentifyProcess(child->pid());
  ASSERT_OK(id);
  auto p = VmmProcess::Attach(io_, *id);
  ASSERT_OK(p);
  EXPECT_FALSE((*p)->is_child());
  ASSERT_OK((*p)->Kill());
  EXPECT_EQ((*p)->exit()->wait_status, -1);
  (void)child->Wait();

  ProcessIdentity stale = *id;
  EXPECT_THAT(VmmProcess::Attach(io_, stale), StatusIs(absl::StatusCode::kNotFound));
  ProcessIdentity reused{::getpid(), 1};
  EXPECT_THAT(VmmProcess::Attach(io_, reused), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(VmmProcessTest, DestroyingDetachesAndAttachAdoptsTheChildBack) {
  ProcessIdentity id;
  {
    auto p = VmmProcess::Spawn(io_, {{KUASAR_TESTINIT_PATH, "sleep", "30"}, "", ""});
    ASSERT_OK(p);
    id = (*p)->identity();
  }
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(::kill(id.pid, 0), 0) << "the detached process must survive";
  auto again = VmmProcess::Attach(io_, id);
  ASSERT_OK(again);
  EXPECT_TRUE((*again)->is_child());
  ASSERT_OK((*again)->Kill());
  EXPECT_EQ(ExitCodeFromWaitStatus((*again)->exit()->wait_status), 137);
}

TEST_F(VmmProcessTest, AttachReapsADetachedChildThatDied) {
  ProcessIdentity id;
  {
    auto p = VmmProcess::Spawn(io_, {{KUASAR_TESTINIT_PATH, "sleep", "30"}, "", ""});
    ASSERT_OK(p);
    id = (*p)->identity();
  }
  ::kill(id.pid, SIGKILL);
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_THAT(VmmProcess::Attach(io_, id), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_NE(::kill(id.pid, 0), 0) << "no zombie left";
}

TEST_F(VmmProcessTest, SpawnsInsideANetworkNamespace) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create a network namespace";
  std::string name = absl::StrFormat("kq-vmmproc-%d", ::getpid());
  auto add = ChildProcess::Spawn({"ip", "netns", "add", name});
  if (!add.ok() || ExitCodeFromWaitStatus(*add->Wait()) != 0) {
    GTEST_SKIP() << "ip netns add failed (no iproute2 or no permission)";
  }
  std::string ns = "/run/netns/" + name;
  struct stat st {};
  ASSERT_EQ(::stat(ns.c_str(), &st), 0);
  TempDir dir("vmmproc");
  auto p = VmmProcess::Spawn(io_, {{"readlink", "/proc/self/ns/net"}, dir.Sub("log"), ns});
  ASSERT_OK(p);
  ASSERT_OK((*p)->WaitFor(absl::Seconds(10)));
  EXPECT_EQ(*ReadSmallFile(dir.Sub("log")), absl::StrFormat("net:[%d]\n", st.st_ino));
  EXPECT_THAT(VmmProcess::Spawn(io_, {{"true"}, "", "/nonexistent/netns"}),
              StatusIs(absl::StatusCode::kNotFound));
  auto del = ChildProcess::Spawn({"ip", "netns", "delete", name});
  ASSERT_OK(del);
  (void)del->Wait();
}

}  // namespace
}  // namespace kuasar::vmm
