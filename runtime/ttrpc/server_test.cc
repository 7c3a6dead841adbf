// Unary calls end to end over a unix socket: payloads, status codes, metadata,
// deadlines, asynchronous completion and concurrency on one connection.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/ttrpc/testing/raw_conn.h"
#include "runtime/ttrpc/testing/ttrpc_fixture.h"
#include "runtime/ttrpc/typed_client.h"
#include "runtime/ttrpc/typed_server.h"

namespace kuasar::ttrpc {
namespace {

using google::protobuf::Empty;
using google::protobuf::Int64Value;
using google::protobuf::StringValue;
using kuasar::testing::StatusIs;
using ::testing::HasSubstr;
using testing::I64;
using testing::kInteropService;
using testing::Str;
using testing::TtrpcTest;

using namespace std::chrono_literals;

TEST_F(TtrpcTest, UnaryEcho) {
  auto r = CallMethod<StringValue>(*client_, kInteropService, "Echo", Str("hello"));
  ASSERT_OK(r);
  EXPECT_EQ(r->value(), "hello");
  r = CallMethod<StringValue>(*client_, kInteropService, "Echo", Str(""));
  ASSERT_OK(r);
  EXPECT_EQ(r->value(), "");
}

TEST_F(TtrpcTest, LargePayloadsUpToTheLimit) {
  std::string big(3u << 20, 'b');
  auto r = CallMethod<StringValue>(*client_, kInteropService, "Echo", Str(big));
  ASSERT_OK(r);
  EXPECT_EQ(r->value(), big);
  // A request envelope over 4 MiB is refused before it is sent, as Go does.
  auto too_big = client_->Call(kInteropService, "Echo", std::string(kMaxMessageSize, 'x'));
  EXPECT_THAT(too_big, StatusIs(absl::StatusCode::kResourceExhausted,
                                HasSubstr("exceed maximum message size of 4194304")));
  // The connection is still good.
  ASSERT_OK(CallMethod<StringValue>(*client_, kInteropService, "Echo", Str("after")));
}

TEST_F(TtrpcTest, ErrorsCarryCodeAndMessage) {
  for (int code = 1; code <= 16; ++code) {
    auto r = client_->Call(kInteropService, "Fail",
                           Str(absl::StrCat(code, ":failure ", code)).SerializeAsString());
    EXPECT_THAT(r, StatusIs(static_cast<absl::StatusCode>(code),
                            absl::StrCat("failure ", code)));
  }
}

TEST_F(TtrpcTest, UnknownServiceAndMethodAreUnimplementedLikeGo) {
  EXPECT_THAT(client_->Call("no.such.Service", "Echo", ""),
              StatusIs(absl::StatusCode::kUnimplemented, "service no.such.Service"));
  EXPECT_THAT(client_->Call(kInteropService, "Nope", ""),
              StatusIs(absl::StatusCode::kUnimplemented, "method Nope"));
}

TEST_F(TtrpcTest, MetadataRoundTrip) {
  CallOptions opts;
  opts.metadata = {{"foo", "bar"}, {"foo", "baz"}, {"x-id", "42"}};
  auto r = CallMethod<StringValue>(*client_, kInteropService, "Metadata", Empty(), opts);
  ASSERT_OK(r);
  EXPECT_EQ(r->value(), "foo=bar;foo=baz;x-id=42");
}

TEST_F(TtrpcTest, TimeoutReachesTheHandlerAsDeadline) {
  CallOptions opts;
  opts.timeout = 5s;
  auto r = CallMethod<Int64Value>(*client_, kInteropService, "Deadline", Empty(), opts);
  ASSERT_OK(r);
  EXPECT_GT(r->value(), 3000);
  EXPECT_LE(r->value(), 5000);
  r = CallMethod<Int64Value>(*client_, kInteropService, "Deadline", Empty());
  ASSERT_OK(r);
  EXPECT_EQ(r->value(), -1);
}

TEST_F(TtrpcTest, DeadlineExceeded) {
  CallOptions opts;
  opts.timeout = 200ms;
  auto start = std::chrono::steady_clock::now();
  auto r = client_->Call(kInteropService, "Sleep", I64(10'000).SerializeAsString(), opts);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  ASSERT_OK(CallMethod<StringValue>(*client_, kInteropService, "Echo", Str("after")));
}

TEST_F(TtrpcTest, ServerEnforcesTimeoutNano) {
  // A raw client sends timeout_nano but never gives up itself: the answer must be the
  // server's own DEADLINE_EXCEEDED, with Go's message.
  auto raw = testing::RawConn::Connect(path_);
  ASSERT_OK(raw);
  ASSERT_TRUE(raw->Write(testing::RequestFrame(1, kInteropService, "Sleep",
                                               I64(10'000).SerializeAsString(), 200'000'000)));
  auto f = raw->ReadFrame(3s);
  ASSERT_OK(f);
  EXPECT_EQ(f->header.stream_id, 1u);
  EXPECT_THAT(testing::ResponseStatus(*f),
              StatusIs(absl::StatusCode::kDeadlineExceeded, "context deadline exceeded"));
}

// Parks every call until `expected` have arrived, then answers them in reverse order.
class Parker {
 public:
  explicit Parker(int expected) : expected_(expected) {}
  void Park(std::string payload, UnaryResponder r) {
    std::vector<std::pair<std::string, UnaryResponder>> release;
    {
      std::lock_guard<std::mutex> lock(mu_);
      parked_.emplace_back(std::move(payload), std::move(r));
      if (static_cast<int>(parked_.size()) < expected_) return;
      release.swap(parked_);
    }
    // From another thread, as a process-exit watcher would.
    std::thread([release = std::move(release)]() mutable {
      for (auto it = release.rbegin(); it != release.rend(); ++it) it->second.Finish(it->first);
    }).detach();
  }

 private:
  std::mutex mu_;
  const int expected_;
  std::vector<std::pair<std::string, UnaryResponder>> parked_;
};

TEST_F(TtrpcTest, TwoHundredConcurrentCallsFromEightThreadsOnOneConnection) {
  constexpr int kThreads = 8, kPerThread = 25, kTotal = kThreads * kPerThread;
  auto parker = std::make_shared<Parker>(kTotal);
  ASSERT_OK(server_->RegisterUnary("test.Park", "Park",
                                   [parker](CallContextPtr, std::string req, UnaryResponder r) {
                                     parker->Park(std::move(req), std::move(r));
                                   }));
  std::mutex mu;
  std::condition_variable cv;
  int done = 0, ok = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string req = absl::StrCat("t", t, "-", i);
        client_->CallAsync("test.Park", "Park", req, {},
                           [&, req](absl::StatusOr<std::string> r) {
                             std::lock_guard<std::mutex> lock(mu);
                             ++done;
                             if (r.ok() && *r == req) ++ok;
                             cv.notify_all();
                           });
      }
    });
  }
  for (auto& th : threads) th.join();
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 20s, [&] { return done == kTotal; }));
  EXPECT_EQ(ok, kTotal);
}

TEST_F(TtrpcTest, BlockingCallsFromManyThreads) {
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        std::string v = absl::StrCat(t, ":", i);
        auto r = CallMethod<StringValue>(*client_, kInteropService, "Echo", Str(v));
        if (r.ok() && r->value() == v) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 800);
}

TEST_F(TtrpcTest, DroppedResponderAnswersInternal) {
  ASSERT_OK(server_->RegisterUnary("test.Drop", "Drop",
                                   [](CallContextPtr, std::string, UnaryResponder) {}));
  EXPECT_THAT(client_->Call("test.Drop", "Drop", ""),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("dropped")));
}

TEST_F(TtrpcTest, ParkedCallIsCancelledAtItsDeadline) {
  std::mutex mu;
  std::condition_variable cv;
  absl::Status cancel_reason;
  bool cancelled = false;
  ASSERT_OK(server_->RegisterUnary(
      "test.Park", "Forever", [&](CallContextPtr ctx, std::string, UnaryResponder r) {
        ctx->OnCancel([&, ctx, r] {
          std::lock_guard<std::mutex> lock(mu);
          cancel_reason = ctx->CancelStatus();
          cancelled = true;
          r.Finish(std::string("too late"));  // ignored: the call already ended
          cv.notify_all();
        });
      }));
  CallOptions opts;
  opts.timeout = 150ms;
  EXPECT_THAT(client_->Call("test.Park", "Forever", "", opts),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return cancelled; }));
  EXPECT_THAT(cancel_reason, StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(TtrpcTest, ParkedCallIsCancelledWhenItsClientGoes) {
  std::mutex mu;
  std::condition_variable cv;
  bool parked = false, cancelled = false;
  ASSERT_OK(server_->RegisterUnary("test.Park", "Forever",
                                   [&](CallContextPtr ctx, std::string, UnaryResponder r) {
                                     ctx->OnCancel([&, r] {
                                       std::lock_guard<std::mutex> lock(mu);
                                       cancelled = true;
                                       cv.notify_all();
                                     });
                                     std::lock_guard<std::mutex> lock(mu);
                                     parked = true;
                                     cv.notify_all();
                                   }));
  client_->CallAsync("test.Park", "Forever", "", {}, [](absl::StatusOr<std::string>) {});
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return parked; }));
  lock.unlock();
  client_.reset();
  lock.lock();
  ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return cancelled; }));
}

TEST_F(TtrpcTest, BlockingCallOnTheIoThreadIsRefused) {
  std::promise<absl::Status> inner;
  client_->CallAsync(kInteropService, "Echo", "", {}, [&](absl::StatusOr<std::string>) {
    inner.set_value(client_->Call(kInteropService, "Echo", "").status());
  });
  EXPECT_THAT(inner.get_future().get(), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(TtrpcTest, DuplicateRegistrationFails) {
  EXPECT_THAT(server_->RegisterBlockingUnary(kInteropService, "Echo", nullptr),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_F(TtrpcTest, BadRequestPayloadIsInternalLikeGoUnmarshal) {
  EXPECT_THAT(client_->Call(kInteropService, "Fail", "\xff\xff\xff"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("unmarshalling")));
}

TEST_F(TtrpcTest, GracefulClientCloseWaitsForPendingCalls) {
  std::promise<absl::StatusOr<std::string>> result;
  client_->CallAsync(kInteropService, "Sleep", I64(200).SerializeAsString(), {},
                     [&](absl::StatusOr<std::string> r) { result.set_value(std::move(r)); });
  ASSERT_OK(client_->Close(5s));
  EXPECT_OK(result.get_future().get());
  EXPECT_FALSE(client_->IsConnected());
  EXPECT_THAT(client_->Call(kInteropService, "Echo", ""),
              StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace kuasar::ttrpc
