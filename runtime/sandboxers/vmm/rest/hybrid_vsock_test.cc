// Hybrid vsock dialing against a scripted VMM end: "OK", a silent close (the guest port
// is not up yet: retry), a refusal that does not heal, and giving up when told to.
#include "runtime/sandboxers/vmm/rest/hybrid_vsock.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"

namespace kuasar::vmm {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

// Closes the first `close_first` connections silently, then answers "OK 1073741824\n"
// plus "hello" to a "CONNECT <port>\n".
class VsockEnd {
 public:
  VsockEnd(const std::string& path, int close_first) : close_first_(close_first) {
    fd_.Reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_.get(), 8), 0);
    thread_ = std::thread([this] {
      while (true) {
        UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!c) return;
        char buf[64] = {};
        ssize_t n = ::read(c.get(), buf, sizeof(buf) - 1);
        if (n <= 0) continue;
        last_line_ = std::string(buf, static_cast<size_t>(n));
        if (accepted_++ < close_first_) continue;
        std::string ok = "OK 1073741824\nhello";
        (void)!::write(c.get(), ok.data(), ok.size());
        absl::SleepFor(absl::Milliseconds(50));
      }
    });
  }
  ~VsockEnd() {
    ::shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
  }
  int accepted() const { return accepted_; }
  std::string last_line_;

 private:
  UniqueFd fd_;
  int close_first_;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

TEST(HybridVsockTest, RetriesUntilTheGuestListensAndKeepsTheStream) {
  TempDir dir("hvs");
  VsockEnd end(dir.Sub("v.sock"), 3);
  auto fd = DialHybridVsock(dir.Sub("v.sock"), 1024, absl::Now() + absl::Seconds(5));
  ASSERT_OK(fd);
  EXPECT_EQ(end.accepted(), 4);
  EXPECT_EQ(end.last_line_, "CONNECT 1024\n");
  char buf[8] = {};
  ASSERT_EQ(::read(fd->get(), buf, 5), 5);  // bytes after the OK line are the guest's
  EXPECT_STREQ(buf, "hello");
}

TEST(HybridVsockTest, NoSocketUntilDeadline) {
  TempDir dir("hvs");
  EXPECT_THAT(DialHybridVsock(dir.Sub("none"), 1024, absl::Now() + absl::Milliseconds(100)),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("port 1024")));
}

TEST(HybridVsockTest, KeepTryingEndsTheWait) {
  TempDir dir("hvs");
  VsockEnd end(dir.Sub("v.sock"), 1000);
  auto fd = DialHybridVsock(dir.Sub("v.sock"), 1024, absl::Now() + absl::Seconds(5),
                            [] { return absl::FailedPreconditionError("VMM exited"); });
  EXPECT_THAT(fd, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("VMM exited")));
}

TEST(HybridVsockTest, OnceSaysUnavailableWhenClosed) {
  TempDir dir("hvs");
  VsockEnd end(dir.Sub("v.sock"), 1);
  EXPECT_THAT(ConnectHybridVsockOnce(dir.Sub("v.sock"), 7, absl::Seconds(2)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("without answering")));
}

}  // namespace
}  // namespace kuasar::vmm
