// StreamRegistry with real FIFOs and an io thread; the "process" is the test opening the
// FIFO paths as OciTaskService's ProcessIo and the container would.
#include "runtime/guest/stream_registry.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <future>
#include <thread>

#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/base/unique_fd.h"

namespace kuasar::guest {
namespace {

using ::kuasar::testing::StatusIs;

class StreamRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override { Make(1 << 20); }
  void TearDown() override {
    registry_.reset();
    work_.reset();
    io_.stop();
    io_thread_.join();
  }
  void Make(size_t limit) {
    StreamRegistryOptions o;
    o.dir = dir_.Sub("streams");
    o.buffer_limit = limit;
    o.unknown_token_wait = absl::Milliseconds(200);
    auto r = StreamRegistry::Create(io_, o);
    ASSERT_OK(r);
    registry_ = std::move(*r);
  }
  // Reads the whole stream (until EOF).
  absl::StatusOr<std::string> ReadAll(const std::string& token) {
    std::string out;
    absl::Status st = registry_->Read(
        token,
        [&](std::string_view c) {
          out.append(c);
          return absl::OkStatus();
        },
        [] { return false; });
    if (!st.ok()) return st;
    return out;
  }

  TempDir dir_{"kuasar-streams"};
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      boost::asio::make_work_guard(io_)};
  std::thread io_thread_{[this] { io_.run(); }};
  std::unique_ptr<StreamRegistry> registry_;
};

TEST_F(StreamRegistryTest, TokensAndUris) {
  EXPECT_OK(ValidateStreamToken("a-B_9.x"));
  EXPECT_THAT(ValidateStreamToken(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateStreamToken("a/b"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateStreamToken(std::string(129, 'a')),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(**ParseStreamUri("kuasar-stream://tok"), "tok");
  EXPECT_FALSE(ParseStreamUri("/run/fifo")->has_value());
  EXPECT_THAT(ParseStreamUri("kuasar-stream://../x"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(StreamRegistryTest, LateReaderGetsEverythingThenEof) {
  auto path = registry_->AddOutput("out1");
  ASSERT_OK(path);
  UniqueFd w(::open(path->c_str(), O_WRONLY | O_CLOEXEC));  // the container's stdout
  ASSERT_TRUE(w);
  registry_->ProcessStarted("out1");
  EXPECT_NE(::access(path->c_str(), F_OK), 0) << "the FIFO file is unlinked once opened";
  std::string big(300 << 10, 'x');
  ASSERT_EQ(::write(w.get(), "hello\n", 6), 6);
  ASSERT_EQ(::write(w.get(), big.data(), big.size()), static_cast<ssize_t>(big.size()));
  w.Reset();
  absl::SleepFor(absl::Milliseconds(100));  // the reader comes after the process is gone
  auto got = ReadAll("out1");
  ASSERT_OK(got);
  EXPECT_EQ(*got, "hello\n" + big);
  EXPECT_EQ(registry_->size(), 1u);
  registry_->Remove("out1");
  EXPECT_EQ(registry_->size(), 0u);
}

TEST_F(StreamRegistryTest, NoEofBeforeTheProcessStarted) {
  auto path = registry_->AddOutput("early");
  ASSERT_OK(path);
  std::atomic<bool> done{false};
  std::thread reader([&] {
    (void)ReadAll("early");
    done = true;
  });
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_FALSE(done) << "a FIFO nobody writes yet must not read as EOF";
  registry_->ProcessStarted("early");  // e.g. the exec failed to start
  reader.join();
  EXPECT_TRUE(done);
}

TEST_F(StreamRegistryTest, FullBufferBlocksTheWriter) {
  registry_.reset();
  Make(8 << 10);
  auto path = registry_->AddOutput("slow");
  ASSERT_OK(path);
  UniqueFd w(::open(path->c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  registry_->ProcessStarted("slow");
  std::string block(4096, 'y');
  size_t written = 0;
  absl::Time stuck_since = absl::InfiniteFuture();
  while (written < (4u << 20)) {
    ssize_t n = ::write(w.get(), block.data(), block.size());
    if (n > 0) {
      written += static_cast<size_t>(n);
      stuck_since = absl::InfiniteFuture();
      continue;
    }
    ASSERT_EQ(errno, EAGAIN);
    if (stuck_since == absl::InfiniteFuture()) stuck_since = absl::Now();
    if (absl::Now() - stuck_since > absl::Milliseconds(300)) break;  // nobody drains
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GE(written, 8u << 10);
  // Bounded by the pipe (64 KiB by default) plus our buffer, far from 4 MB.
  EXPECT_LT(written, 256u << 10);
  std::future<absl::StatusOr<std::string>> all =
      std::async(std::launch::async, [&] { return ReadAll("slow"); });
  absl::SleepFor(absl::Milliseconds(100));
  ASSERT_EQ(::write(w.get(), "end", 3), 3) << "draining made room again";
  w.Reset();
  auto got = all.get();
  ASSERT_OK(got);
  EXPECT_EQ(got->size(), written + 3);
}

TEST_F(StreamRegistryTest, OneReaderAtATimeAndUnknownTokens) {
  ASSERT_OK(registry_->AddOutput("busy"));
  std::thread first([&] { (void)ReadAll("busy"); });
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_THAT(ReadAll("busy"), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(ReadAll("nope"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(registry_->AddOutput("busy"), StatusIs(absl::StatusCode::kAlreadyExists));
  registry_->Remove("busy");  // the process was deleted: the reader ends
  first.join();
}

TEST_F(StreamRegistryTest, ReaderCancelled) {
  ASSERT_OK(registry_->AddOutput("c"));
  std::atomic<bool> cancel{false};
  std::thread t([&] { cancel = true; });
  absl::Status st = registry_->Read(
      "c", [](std::string_view) { return absl::OkStatus(); }, [&] { return cancel.load(); });
  t.join();
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kCancelled));
}

TEST_F(StreamRegistryTest, StdinWrittenBeforeTheProcessOpensItIsKept) {
  std::atomic<int> ends{0};
  auto path = registry_->AddInput("in1", [&] { ++ends; });
  ASSERT_OK(path);
  std::vector<std::string> more = {" world", "!"};
  size_t i = 0;
  ASSERT_OK(registry_->Write(
      "in1", "hello",
      [&](std::string* c) -> absl::StatusOr<bool> {
        if (i == more.size()) return false;
        *c = more[i++];
        return true;
      },
      [] { return false; }));
  EXPECT_EQ(ends, 0) << "stdin may only close once the process holds its end";
  UniqueFd r(::open(path->c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));  // Start opens it
  ASSERT_TRUE(r);
  registry_->ProcessStarted("in1");
  EXPECT_EQ(ends, 1);
  char buf[64];
  ssize_t n = ::read(r.get(), buf, sizeof(buf));
  ASSERT_EQ(n, 12);
  EXPECT_EQ(std::string(buf, 12), "hello world!");
  EXPECT_EQ(::read(r.get(), buf, sizeof(buf)), 0) << "EOF: every writer is gone";
  EXPECT_THAT(registry_->Write(
                  "in1", "x", [](std::string*) { return false; }, [] { return false; }),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(StreamRegistryTest, CancelledWriterLeavesStdinOpen) {
  std::atomic<int> ends{0};
  auto path = registry_->AddInput("in2", [&] { ++ends; });
  ASSERT_OK(path);
  UniqueFd r(::open(path->c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  registry_->ProcessStarted("in2");
  EXPECT_THAT(registry_->Write(
                  "in2", "a",
                  [](std::string*) -> absl::StatusOr<bool> {
                    return absl::CancelledError("client went away");
                  },
                  [] { return true; }),
              StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(ends, 0);
  ASSERT_OK(registry_->Write(
      "in2", "b", [](std::string*) { return false; }, [] { return false; }));
  EXPECT_EQ(ends, 1);
  EXPECT_THAT(registry_->Read(
                  "in2", [](std::string_view) { return absl::OkStatus(); }, [] { return false; }),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace kuasar::guest
