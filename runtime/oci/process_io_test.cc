#include "runtime/oci/process_io.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <future>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <gtest/gtest.h>

#include "runtime/base/atomic_file.h"
#include "runtime/base/child_process.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/base/unique_fd.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

// Reads `fd` (non-blocking) until `want` shows up, EOF, or `timeout`; returns all read.
std::string ReadUntil(int fd, std::string_view want, absl::Duration timeout = absl::Seconds(5)) {
  std::string got;
  absl::Time deadline = absl::Now() + timeout;
  while (got.find(want) == std::string::npos && absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    char buf[512];
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n == 0) break;
    if (n > 0) got.append(buf, n);
  }
  return got;
}

UniqueFd OpenReader(const std::string& path) {
  return UniqueFd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
}

SpawnOptions WithStdio(std::array<int, 3> fds) {
  SpawnOptions o;
  o.stdin_fd = fds[0];
  o.stdout_fd = fds[1];
  o.stderr_fd = fds[2];
  return o;
}

class ProcessIoTest : public ::testing::Test {
 protected:
  void SetUp() override { io_thread_ = std::thread([this] { io_.run(); }); }
  void TearDown() override {
    work_.reset();
    io_.stop();
    io_thread_.join();
  }
  std::string Fifo(const std::string& name) {
    std::string p = dir_.Sub(name);
    EXPECT_EQ(::mkfifo(p.c_str(), 0600), 0) << p;
    return p;
  }

  TempDir dir_{"kio"};
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  std::thread io_thread_;
};

TEST_F(ProcessIoTest, ContainerWritesStraightToFifos) {
  std::string out = Fifo("out"), err = Fifo("err");
  auto pio = ProcessIo::Open(io_, {"", out, err}, "");
  ASSERT_OK(pio);
  std::array<int, 3> fds = (*pio)->RuntimeStdio();
  EXPECT_EQ(fds[0], -1);
  auto child = ChildProcess::Spawn({"/bin/sh", "-c", "echo to-out; echo to-err >&2; cat"},
                                   WithStdio(fds));
  ASSERT_OK(child);
  (*pio)->ReleaseRuntimeStdio();
  EXPECT_EQ((*pio)->RuntimeStdio()[1], -1);
  // containerd attaches after the process started writing.
  UniqueFd r_out = OpenReader(out), r_err = OpenReader(err);
  EXPECT_THAT(ReadUntil(r_out.get(), "to-out"), HasSubstr("to-out"));
  EXPECT_THAT(ReadUntil(r_err.get(), "to-err"), HasSubstr("to-err"));
  auto st = child->WaitFor(std::chrono::seconds(5));  // cat read /dev/null: EOF at once
  ASSERT_OK(st);
  EXPECT_EQ(*st, 0);
  // With the child gone and our copies released no writer remains: the reader sees EOF.
  char c;
  EXPECT_EQ(::read(r_out.get(), &c, 1), 0);
  bool done = false;
  (*pio)->OnOutputDone([&] { done = true; });
  EXPECT_TRUE(done);
}

TEST_F(ProcessIoTest, StdinKeepAliveHoldsUntilCloseStdin) {
  std::string in = Fifo("in"), out = Fifo("out");
  auto pio = ProcessIo::Open(io_, {in, out, ""}, "");
  ASSERT_OK(pio);
  auto cat = ChildProcess::Spawn({"/bin/cat"}, WithStdio((*pio)->RuntimeStdio()));
  ASSERT_OK(cat);
  (*pio)->ReleaseRuntimeStdio();
  UniqueFd r_out = OpenReader(out);
  {
    UniqueFd w(::open(in.c_str(), O_WRONLY | O_CLOEXEC));  // containerd's writer
    ASSERT_TRUE(w.valid());
    ASSERT_EQ(::write(w.get(), "hello\n", 6), 6);
    EXPECT_THAT(ReadUntil(r_out.get(), "hello"), HasSubstr("hello"));
  }
  // containerd closed its writer but CloseIO has not come: no EOF yet.
  EXPECT_THAT(cat->WaitFor(std::chrono::milliseconds(300)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  (*pio)->CloseStdin();
  auto st = cat->WaitFor(std::chrono::seconds(5));
  ASSERT_OK(st);
  EXPECT_EQ(*st, 0);
}

TEST_F(ProcessIoTest, CloseStdinWaitsForContainerdWriter) {
  std::string in = Fifo("in");
  auto pio = ProcessIo::Open(io_, {in, "", ""}, "");
  ASSERT_OK(pio);
  auto cat = ChildProcess::Spawn({"/bin/cat"}, WithStdio((*pio)->RuntimeStdio()));
  ASSERT_OK(cat);
  (*pio)->ReleaseRuntimeStdio();
  UniqueFd w(::open(in.c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(w.valid());
  (*pio)->CloseStdin();
  (*pio)->CloseStdin();  // idempotent
  EXPECT_THAT(cat->WaitFor(std::chrono::milliseconds(300)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  w.Reset();
  ASSERT_OK(cat->WaitFor(std::chrono::seconds(5)));
}

TEST_F(ProcessIoTest, StdinNeverAttachedEndsAtCloseStdin) {
  std::string in = Fifo("in");
  auto pio = ProcessIo::Open(io_, {in, "", ""}, "");
  ASSERT_OK(pio);
  auto cat = ChildProcess::Spawn({"/bin/cat"}, WithStdio((*pio)->RuntimeStdio()));
  ASSERT_OK(cat);
  (*pio)->ReleaseRuntimeStdio();
  EXPECT_THAT(cat->WaitFor(std::chrono::milliseconds(200)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  (*pio)->CloseStdin();
  ASSERT_OK(cat->WaitFor(std::chrono::seconds(5)));
}

TEST_F(ProcessIoTest, StdoutFifoWithoutReaderDoesNotBlock) {
  std::string out = Fifo("out");
  auto opened = std::async(std::launch::async,
                           [&] { return ProcessIo::Open(io_, {"", out, out}, ""); });
  if (opened.wait_for(std::chrono::seconds(3)) != std::future_status::ready) {
    UniqueFd unblock = OpenReader(out);  // let the stuck open finish before failing
    opened.wait();
    FAIL() << "opening a stdout FIFO without a reader blocked";
  }
  auto pio = opened.get();
  ASSERT_OK(pio);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd hold_r(p[0]), hold_w(p[1]);
  std::array<int, 3> fds = (*pio)->RuntimeStdio();
  fds[0] = hold_r.get();
  auto child = ChildProcess::Spawn({"/bin/sh", "-c", "echo early; read x"}, WithStdio(fds));
  ASSERT_OK(child);
  (*pio)->ReleaseRuntimeStdio();
  // containerd's reader comes late, on its own thread, with a blocking open. (It must
  // come while the process still holds the FIFO: the kernel drops a pipe's buffer
  // when its last fd closes.)
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto reader = std::async(std::launch::async, [&] {
    UniqueFd r(::open(out.c_str(), O_RDONLY | O_CLOEXEC));
    std::string got;
    char buf[64];
    ssize_t n;
    while ((n = ::read(r.get(), buf, sizeof(buf))) > 0) got.append(buf, n);
    return got;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  hold_w.Reset();  // the process exits; the reader then sees EOF
  ASSERT_OK(child->WaitFor(std::chrono::seconds(5)));
  ASSERT_EQ(reader.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(reader.get(), "early\n");
}

TEST_F(ProcessIoTest, FileUriAppends) {
  std::string log = dir_.Sub("logs/my log");
  std::string uri = "file://" + dir_.Sub("logs/my%20log");
  ASSERT_OK(ProcessIo::Open(io_, {"", uri, uri}, "").status());  // creates the file
  ASSERT_OK(WriteFileAtomically(log, "old\n", 0640));
  auto pio = ProcessIo::Open(io_, {"", uri, uri}, "");
  ASSERT_OK(pio);
  auto child = ChildProcess::Spawn({"/bin/sh", "-c", "echo out; echo err >&2"},
                                   WithStdio((*pio)->RuntimeStdio()));
  ASSERT_OK(child);
  (*pio)->ReleaseRuntimeStdio();
  ASSERT_OK(child->WaitFor(std::chrono::seconds(5)));
  auto text = ReadSmallFile(log);
  ASSERT_OK(text);
  EXPECT_EQ(*text, "old\nout\nerr\n");
}

TEST_F(ProcessIoTest, RejectsWhatItCannotServe) {
  std::string out = Fifo("out");
  EXPECT_THAT(ProcessIo::Open(io_, {"", "binary:///usr/bin/logger?id=1", ""}, ""),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("binary://")));
  EXPECT_THAT(ProcessIo::Open(io_, {"", out, "binary:///x"}, ""),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("stderr")));
  EXPECT_THAT(ProcessIo::Open(io_, {"file:///tmp/x", "", ""}, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stdin")));
  EXPECT_THAT(ProcessIo::Open(io_, {"", "tcp://1.2.3.4:5", ""}, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("scheme")));
  EXPECT_THAT(ProcessIo::Open(io_, {"", "relative/out", ""}, ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ProcessIo::Open(io_, {"", dir_.Sub("missing"), ""}, ""),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing")));
  auto plain = ProcessIo::Open(io_, {"", out, ""}, "");
  ASSERT_OK(plain);
  EXPECT_THAT((*plain)->Resize(80, 24), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT((*plain)->AfterRuntimeStarted(absl::Seconds(1)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

// Plays the OCI runtime's side of --console-socket: makes a pty, sends the master over
// the socket (SCM_RIGHTS, with the pty name as data, as runc does) and keeps the slave
// for the "container" processes.
class FakeRuntimeConsole {
 public:
  absl::Status Connect(const std::string& socket_path) {
    UniqueFd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!master || ::grantpt(master.get()) != 0 || ::unlockpt(master.get()) != 0) {
      return absl::InternalError("posix_openpt");
    }
    char name[64];
    if (::ptsname_r(master.get(), name, sizeof(name)) != 0) return absl::InternalError("ptsname");
    slave_.Reset(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!slave_) return absl::InternalError("open slave");
    UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_path.c_str(), sizeof(addr.sun_path) - 1);
    if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      return absl::InternalError("connect console socket");
    }
    iovec iov{name, std::strlen(name)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    int fd = master.get();
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    if (::sendmsg(sock.get(), &msg, 0) < 0) return absl::InternalError("sendmsg");
    return absl::OkStatus();  // our master copy closes here, as the runtime's does
  }
  absl::StatusOr<ChildProcess> Run(const std::string& script) {
    return ChildProcess::Spawn({"/bin/sh", "-c", script},
                               WithStdio({slave_.get(), slave_.get(), slave_.get()}));
  }
  void CloseSlave() { slave_.Reset(); }

 private:
  UniqueFd slave_;
};

TEST_F(ProcessIoTest, TerminalCopiesThroughThePty) {
  std::string in = Fifo("in"), out = Fifo("out"), sock = dir_.Sub("console.sock");
  auto pio = ProcessIo::Open(io_, {in, out, "", true}, sock);
  ASSERT_OK(pio);
  EXPECT_TRUE((*pio)->terminal());
  struct stat st {};
  ASSERT_EQ(::stat(sock.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ((*pio)->RuntimeStdio(), (std::array<int, 3>{-1, -1, -1}));
  EXPECT_THAT((*pio)->Resize(80, 24), StatusIs(absl::StatusCode::kFailedPrecondition));

  FakeRuntimeConsole runtime;
  ASSERT_OK(runtime.Connect(sock));
  auto shell = runtime.Run("stty size; echo hi; read x; echo got:$x");
  ASSERT_OK(shell);
  ASSERT_OK((*pio)->AfterRuntimeStarted(absl::Seconds(5)));
  EXPECT_NE(::access(sock.c_str(), F_OK), 0) << "console socket left behind";
  std::promise<void> done;
  (*pio)->OnOutputDone([&] { done.set_value(); });

  UniqueFd r_out = OpenReader(out);
  std::string got = ReadUntil(r_out.get(), "hi");
  EXPECT_THAT(got, HasSubstr("0 0"));
  EXPECT_THAT(got, HasSubstr("hi"));

  ASSERT_OK((*pio)->Resize(100, 40));
  auto stty = runtime.Run("stty size");
  ASSERT_OK(stty);
  EXPECT_THAT(ReadUntil(r_out.get(), "40 100"), HasSubstr("40 100"));
  ASSERT_OK(stty->WaitFor(std::chrono::seconds(5)));

  UniqueFd w(::open(in.c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(w.valid());
  ASSERT_EQ(::write(w.get(), "abc\n", 4), 4);
  EXPECT_THAT(ReadUntil(r_out.get(), "got:abc"), HasSubstr("got:abc"));
  ASSERT_OK(shell->WaitFor(std::chrono::seconds(5)));

  // The shell is gone, but output is done only when no one holds the slave.
  auto future = done.get_future();
  EXPECT_EQ(future.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  runtime.CloseSlave();
  EXPECT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  bool late = false;
  (*pio)->OnOutputDone([&] { late = true; });  // already done: runs at once
  EXPECT_TRUE(late);
}

TEST_F(ProcessIoTest, TerminalWithoutRuntimeTimesOut) {
  std::string sock = dir_.Sub("console.sock");
  auto pio = ProcessIo::Open(io_, {"", "", "", true}, sock);
  ASSERT_OK(pio);
  EXPECT_THAT((*pio)->AfterRuntimeStarted(absl::Milliseconds(100)),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr(sock)));
  EXPECT_NE(::access(sock.c_str(), F_OK), 0);
  EXPECT_THAT((*pio)->AfterRuntimeStarted(absl::Milliseconds(100)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(ProcessIoTest, CloseRemovesUnusedConsoleSocket) {
  std::string sock = dir_.Sub("console.sock");
  auto pio = ProcessIo::Open(io_, {"", "", "", true}, sock);
  ASSERT_OK(pio);
  EXPECT_EQ(::access(sock.c_str(), F_OK), 0);
  pio->reset();
  EXPECT_NE(::access(sock.c_str(), F_OK), 0);
}

// Close while copies are in flight (stdout full, nobody reading; stdin pending), from
// another thread than the io thread; then the io thread runs the aborted handlers.
TEST_F(ProcessIoTest, CloseWhileCopying) {
  std::string in = Fifo("in"), out = Fifo("out"), sock = dir_.Sub("console.sock");
  auto pio = ProcessIo::Open(io_, {in, out, "", true}, sock);
  ASSERT_OK(pio);
  FakeRuntimeConsole runtime;
  ASSERT_OK(runtime.Connect(sock));
  auto spam = runtime.Run("while :; do echo spamspamspamspamspamspamspamspam; done");
  ASSERT_OK(spam);
  ASSERT_OK((*pio)->AfterRuntimeStarted(absl::Seconds(5)));
  std::atomic<bool> done{false};
  (*pio)->OnOutputDone([&] { done = true; });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // fills the 64 KiB pipe
  (*pio)->Close();
  (*pio)->Close();
  pio->reset();
  ASSERT_OK(spam->Signal(SIGKILL));
  ASSERT_OK(spam->Wait());
  runtime.CloseSlave();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(done);  // never after Close
}

}  // namespace
}  // namespace kuasar
