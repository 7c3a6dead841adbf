#include "runtime/sandboxers/runc/pod_holder.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <gtest/gtest.h>

#include "runtime/base/atomic_file.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

ino_t NsInode(pid_t pid, const char* ns) {
  struct stat st {};
  std::string p = "/proc/" + std::to_string(pid) + "/ns/" + ns;
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_ino;
}

class PodHolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (namespaces)";
    io_thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (conn_) conn_->Close();
    for (pid_t p : holders_) ::kill(p, SIGTERM);
    work_.reset();
    io_.stop();
    if (io_thread_.joinable()) io_thread_.join();
  }

  HolderOptions Options() {
    HolderOptions o;
    o.holder_binary = KUASAR_HOLDER_PATH;
    o.dir = dir_.path();
    o.hostname = "pod-host";
    return o;
  }

  absl::StatusOr<HolderInfo> Start(const HolderOptions& o) {
    auto info = StartHolder(o);
    if (info.ok()) holders_.push_back(info->holder.pid);
    return info;
  }

  void ConnectTo(const std::string& dir) {
    auto c = HolderConnection::Connect(io_, HolderSocketPath(dir), &exits_,
                                       [this] { disconnected_ = true; });
    ASSERT_OK(c);
    conn_ = *c;
  }

  TempDir dir_{"kh"};
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  std::thread io_thread_;
  ExitRegistry exits_;
  std::shared_ptr<HolderConnection> conn_;
  std::vector<pid_t> holders_;
  std::atomic<bool> disconnected_{false};
};

TEST_F(PodHolderTest, OwnsNamespacesAndIsNotOurChild) {
  auto info = Start(Options());
  ASSERT_OK(info);
  EXPECT_EQ(info->holder, info->sandbox);
  EXPECT_NE(NsInode(info->holder.pid, "ipc"), NsInode(::getpid(), "ipc"));
  EXPECT_NE(NsInode(info->holder.pid, "uts"), NsInode(::getpid(), "uts"));
  EXPECT_EQ(NsInode(info->holder.pid, "net"), NsInode(::getpid(), "net"));
  EXPECT_EQ(NsInode(info->holder.pid, "pid"), NsInode(::getpid(), "pid"));
  // Double fork: the holder is not our child.
  EXPECT_EQ(::waitpid(info->holder.pid, nullptr, WNOHANG), -1);
  struct stat st {};
  ASSERT_EQ(::stat(HolderSocketPath(dir_.path()).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(PodHolderTest, SharedPidNamespaceHasItsOwnInit) {
  HolderOptions o = Options();
  o.new_pid = true;
  auto info = Start(o);
  ASSERT_OK(info);
  EXPECT_NE(info->sandbox.pid, info->holder.pid);
  EXPECT_NE(NsInode(info->sandbox.pid, "pid_for_children"), 0u);
  EXPECT_NE(NsInode(info->sandbox.pid, "pid"), NsInode(::getpid(), "pid"));
  EXPECT_EQ(NsInode(info->sandbox.pid, "ipc"), NsInode(info->holder.pid, "ipc"));
  // What the holder spawns stays in the host PID namespace (runtimes must see host pids).
  ConnectTo(dir_.path());
  std::string out = dir_.Sub("ns");
  int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  auto pid = conn_->Spawn({"/bin/readlink", "/proc/self/ns/pid"}, {}, {-1, fd, -1});
  ::close(fd);
  ASSERT_OK(pid);
  int status = 0;
  ASSERT_TRUE(exits_.WaitFor(*pid, absl::Seconds(5), &status));
  struct stat self_ns {};
  ::stat("/proc/self/ns/pid", &self_ns);
  EXPECT_EQ(*ReadSmallFile(out), "pid:[" + std::to_string(self_ns.st_ino) + "]\n");
  // Stopping the holder takes its PID 1 with it.
  ASSERT_EQ(::kill(info->holder.pid, SIGTERM), 0);
  for (int i = 0; i < 200 && (IsSameProcessAlive(info->holder) || IsSameProcessAlive(info->sandbox)); ++i) {
    ::usleep(10000);
  }
  EXPECT_FALSE(IsSameProcessAlive(info->holder));
  EXPECT_FALSE(IsSameProcessAlive(info->sandbox));
}

TEST_F(PodHolderTest, SpawnsAndReapsOrphansWithExitStatus) {
  auto info = Start(Options());
  ASSERT_OK(info);
  ConnectTo(dir_.path());
  std::string out = dir_.Sub("out");
  int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  // The shell forks a grandchild and exits: the grandchild is orphaned to the holder,
  // which must report both exits with their real statuses.
  auto pid = conn_->Spawn({"/bin/sh", "-c", "hostname; (sleep 0.2; exit 7) & echo $!; exit 3"},
                          {"PATH=/usr/bin:/bin"}, {-1, fd, -1});
  ::close(fd);
  ASSERT_OK(pid);
  int status = 0;
  ASSERT_TRUE(exits_.WaitFor(*pid, absl::Seconds(5), &status));
  EXPECT_EQ(WEXITSTATUS(status), 3);
  auto text = ReadSmallFile(out);
  ASSERT_OK(text);
  EXPECT_THAT(*text, HasSubstr("pod-host\n"));
  pid_t orphan = std::stoi(text->substr(text->find('\n') + 1));
  ASSERT_TRUE(exits_.WaitFor(orphan, absl::Seconds(5), &status));
  EXPECT_EQ(WEXITSTATUS(status), 7);
  // Both exits are in the journal for a restarted sandboxer.
  auto journal = ReadHolderJournal(dir_.path());
  ASSERT_EQ(journal.size(), 2u);
  EXPECT_EQ(journal[1].pid, orphan);
  EXPECT_EQ(WEXITSTATUS(journal[1].wait_status), 7);
}

// In a pod that shares its PID namespace, orphans are reaped by the pod's PID 1, not by
// the holder; their exits must still arrive, under their host pids.
TEST_F(PodHolderTest, OrphansInsideThePodPidNamespaceAreReported) {
  HolderOptions o = Options();
  o.new_pid = true;
  auto info = Start(o);
  ASSERT_OK(info);
  ConnectTo(dir_.path());
  std::string out = dir_.Sub("hostpid");
  std::string script = "(read -r hp rest < /proc/self/stat; echo $hp > " + out +
                       "; sleep 0.2; exit 7) & exit 0";
  auto pid = conn_->Spawn({"/usr/bin/nsenter", "-t", std::to_string(info->sandbox.pid), "-p",
                           "--", "/bin/sh", "-c", script},
                          {"PATH=/usr/bin:/bin"}, {-1, -1, -1});
  ASSERT_OK(pid);
  int status = 0;
  ASSERT_TRUE(exits_.WaitFor(*pid, absl::Seconds(5), &status));
  for (int i = 0; i < 200 && !ReadSmallFile(out).ok(); ++i) ::usleep(10000);
  auto text = ReadSmallFile(out);
  ASSERT_OK(text);
  pid_t orphan = std::stoi(*text);
  ASSERT_TRUE(exits_.WaitFor(orphan, absl::Seconds(5), &status)) << "no exit for host pid " << orphan;
  EXPECT_EQ(WEXITSTATUS(status), 7);
  bool journaled = false;
  for (const auto& e : ReadHolderJournal(dir_.path())) journaled |= e.pid == orphan;
  EXPECT_TRUE(journaled);
}

TEST_F(PodHolderTest, ExecFailureIsAnErrorAndReconnectWorks) {
  auto info = Start(Options());
  ASSERT_OK(info);
  ConnectTo(dir_.path());
  EXPECT_THAT(conn_->Spawn({"/nonexistent/crun"}, {}, {-1, -1, -1}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/crun")));
  EXPECT_THAT(conn_->Spawn({"relative"}, {}, {-1, -1, -1}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // A restarted sandboxer connects again and is served.
  conn_->Close();
  ConnectTo(dir_.path());
  auto pid = conn_->Spawn({"/bin/true"}, {}, {-1, -1, -1});
  ASSERT_OK(pid);
  int status = -1;
  ASSERT_TRUE(exits_.WaitFor(*pid, absl::Seconds(5), &status));
  EXPECT_EQ(status, 0);
}

TEST_F(PodHolderTest, HolderDeathIsReportedAsDisconnect) {
  auto info = Start(Options());
  ASSERT_OK(info);
  ConnectTo(dir_.path());
  ASSERT_EQ(::kill(info->holder.pid, SIGKILL), 0);
  for (int i = 0; i < 200 && !disconnected_; ++i) ::usleep(10000);
  EXPECT_TRUE(disconnected_);
  EXPECT_THAT(conn_->Spawn({"/bin/true"}, {}, {-1, -1, -1}),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(PodHolderTest, AppliesPodSysctlsInItsOwnNamespaces) {
  HolderOptions o = Options();
  o.sysctls = {{"kernel.shm_rmid_forced", "1"}, {"fs.mqueue.msg_max", "100"}};
  auto host_before = ReadSmallFile("/proc/sys/kernel/shm_rmid_forced");
  auto info = Start(o);
  ASSERT_OK(info);
  ConnectTo(dir_.path());
  std::string out = dir_.Sub("sysctl");
  int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  auto pid = conn_->Spawn({"/bin/cat", "/proc/sys/kernel/shm_rmid_forced",
                           "/proc/sys/fs/mqueue/msg_max"}, {}, {-1, fd, -1});
  ::close(fd);
  ASSERT_OK(pid);
  int status = 0;
  ASSERT_TRUE(exits_.WaitFor(*pid, absl::Seconds(5), &status));
  EXPECT_EQ(*ReadSmallFile(out), "1\n100\n");
  EXPECT_EQ(*ReadSmallFile("/proc/sys/kernel/shm_rmid_forced"), *host_before);  // node untouched
}

TEST_F(PodHolderTest, BadNetnsFailsCleanlyWithTheReason) {
  HolderOptions o = Options();
  o.netns_path = "/nonexistent/netns";
  EXPECT_THAT(Start(o), StatusIs(absl::StatusCode::kInternal, HasSubstr("open netns")));
}

}  // namespace
}  // namespace kuasar
