// Streams end to end: server-, client- and bidirectional streaming, errors, deadlines
// and flow control in both directions.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "runtime/ttrpc/testing/ttrpc_fixture.h"

namespace kuasar::ttrpc {
namespace {

using google::protobuf::Int32Value;
using google::protobuf::StringValue;
using kuasar::testing::StatusIs;
using testing::kInteropService;
using testing::Str;
using testing::TtrpcTest;

using namespace std::chrono_literals;

constexpr StreamKind kServerStreaming{.client_streaming = false, .server_streaming = true};
constexpr StreamKind kClientStreaming{.client_streaming = true, .server_streaming = false};
constexpr StreamKind kBidi{.client_streaming = true, .server_streaming = true};

std::string Int32(int v) {
  Int32Value m;
  m.set_value(v);
  return m.SerializeAsString();
}

TEST_F(TtrpcTest, ServerStream) {
  for (int n : {0, 1, 5, 300}) {
    auto s = client_->NewStream(kInteropService, "ServerStream", kServerStreaming, Int32(n));
    ASSERT_OK(s);
    StringValue msg;
    int got = 0;
    for (;;) {
      auto more = (*s)->RecvMessage(&msg);
      ASSERT_OK(more);
      if (!*more) break;
      EXPECT_EQ(msg.value(), absl::StrCat("msg-", got));
      ++got;
    }
    EXPECT_EQ(got, n);
    EXPECT_OK((*s)->Finish());
  }
}

TEST_F(TtrpcTest, ClientStream) {
  auto s = client_->NewStream(kInteropService, "ClientStream", kClientStreaming);
  ASSERT_OK(s);
  for (const char* v : {"a", "b", "c"}) ASSERT_OK((*s)->SendMessage(Str(v)));
  ASSERT_OK((*s)->CloseSend());
  EXPECT_THAT((*s)->CloseSend(), StatusIs(absl::StatusCode::kFailedPrecondition));
  StringValue resp;
  auto more = (*s)->RecvMessage(&resp);
  ASSERT_OK(more);
  ASSERT_TRUE(*more);
  EXPECT_EQ(resp.value(), "a,b,c");
  EXPECT_OK((*s)->Finish());
}

TEST_F(TtrpcTest, ClientStreamWithNoMessages) {
  auto s = client_->NewStream(kInteropService, "ClientStream", kClientStreaming);
  ASSERT_OK(s);
  ASSERT_OK((*s)->CloseSend());
  std::string resp;
  ASSERT_TRUE((*s)->Recv(&resp));
  EXPECT_EQ(resp, "");  // StringValue("") encodes to nothing
  EXPECT_OK((*s)->Finish());
}

TEST_F(TtrpcTest, BidiStream) {
  auto s = client_->NewStream(kInteropService, "Bidi", kBidi);
  ASSERT_OK(s);
  StringValue msg;
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK((*s)->SendMessage(Str(absl::StrCat("m", i))));
    auto more = (*s)->RecvMessage(&msg);
    ASSERT_OK(more);
    ASSERT_TRUE(*more);
    EXPECT_EQ(msg.value(), absl::StrCat("echo:m", i));
  }
  ASSERT_OK((*s)->CloseSend());
  auto more = (*s)->RecvMessage(&msg);
  ASSERT_OK(more);
  EXPECT_FALSE(*more);
  EXPECT_OK((*s)->Finish());
}

TEST_F(TtrpcTest, BidiSendAndReceiveOnDifferentThreads) {
  auto s = client_->NewStream(kInteropService, "Bidi", kBidi);
  ASSERT_OK(s);
  ClientStream& stream = **s;
  constexpr int kCount = 2000;
  std::thread sender([&] {
    for (int i = 0; i < kCount; ++i) ASSERT_OK(stream.SendMessage(Str(absl::StrCat(i))));
    ASSERT_OK(stream.CloseSend());
  });
  StringValue msg;
  int got = 0;
  while (true) {
    auto more = stream.RecvMessage(&msg);
    ASSERT_OK(more);
    if (!*more) break;
    EXPECT_EQ(msg.value(), absl::StrCat("echo:", got));
    ++got;
  }
  sender.join();
  EXPECT_EQ(got, kCount);
  EXPECT_OK(stream.Finish());
}

TEST_F(TtrpcTest, StreamHandlerErrorEndsTheStream) {
  ASSERT_OK(server_->RegisterStream("test.S", "Fail", kServerStreaming, [](ServerStream& s) {
    EXPECT_OK(s.SendMessage(Str("first")));
    return absl::StatusOr<std::string>(absl::NotFoundError("gone"));
  }));
  auto s = client_->NewStream("test.S", "Fail", kServerStreaming, "");
  ASSERT_OK(s);
  std::string msg;
  ASSERT_TRUE((*s)->Recv(&msg));
  EXPECT_FALSE((*s)->Recv(&msg));
  EXPECT_THAT((*s)->Finish(), StatusIs(absl::StatusCode::kNotFound, "gone"));
}

TEST_F(TtrpcTest, UnknownStreamMethodIsUnimplemented) {
  auto s = client_->NewStream(kInteropService, "NoStream", kBidi);
  ASSERT_OK(s);
  EXPECT_THAT((*s)->Finish(), StatusIs(absl::StatusCode::kUnimplemented, "method NoStream"));
}

TEST_F(TtrpcTest, StreamDeadline) {
  ASSERT_OK(server_->RegisterStream("test.S", "Silent", kBidi, [](ServerStream& s) {
    std::string m;
    while (s.Recv(&m)) {
    }
    absl::Status why = s.context().CancelStatus();
    if (why.ok()) return absl::StatusOr<std::string>(std::string());
    return absl::StatusOr<std::string>(why);
  }));
  CallOptions opts;
  opts.timeout = 200ms;
  auto s = client_->NewStream("test.S", "Silent", kBidi, "", opts);
  ASSERT_OK(s);
  std::string m;
  EXPECT_FALSE((*s)->Recv(&m));
  EXPECT_THAT((*s)->Finish(), StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(TtrpcTest, SendOnNonStreamingSideFails) {
  auto s = client_->NewStream(kInteropService, "ServerStream", kServerStreaming, Int32(1));
  ASSERT_OK(s);
  EXPECT_THAT((*s)->Send("x"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_OK((*s)->Finish());
}

TEST_F(TtrpcTest, SlowConsumerGetsBackpressureNotErrors) {
  // The handler reads slower than the client sends: more than stream_buffer messages
  // pile up, the connection pauses reading, and nothing is lost.
  ASSERT_OK(server_->RegisterStream("test.S", "Slow", kClientStreaming, [](ServerStream& s) {
    std::string m;
    int n = 0;
    while (s.Recv(&m)) {
      if (++n % 50 == 0) std::this_thread::sleep_for(5ms);
    }
    return absl::StatusOr<std::string>(absl::StrCat(n));
  }));
  auto s = client_->NewStream("test.S", "Slow", kClientStreaming);
  ASSERT_OK(s);
  for (int i = 0; i < 1000; ++i) ASSERT_OK((*s)->Send("m"));
  ASSERT_OK((*s)->CloseSend());
  std::string count;
  ASSERT_TRUE((*s)->Recv(&count));
  EXPECT_EQ(count, "1000");
  EXPECT_OK((*s)->Finish());
}

TEST_F(TtrpcTest, StalledConsumerFailsTheStreamLikeGo) {
  // The handler never reads: after stream_buffer messages the connection waits 1 s for
  // room, then fails the stream (Go: "data handling error: ttrpc: stream buffer full").
  ASSERT_OK(server_->RegisterStream("test.S", "Stall", kClientStreaming, [](ServerStream& s) {
    s.context().WaitForCancel(10s);
    return absl::StatusOr<std::string>(std::string("unreachable"));
  }));
  auto s = client_->NewStream("test.S", "Stall", kClientStreaming);
  ASSERT_OK(s);
  for (int i = 0; i < 100; ++i) ASSERT_OK((*s)->Send("m"));
  auto start = std::chrono::steady_clock::now();
  EXPECT_THAT((*s)->Finish(), StatusIs(absl::StatusCode::kInvalidArgument,
                                       "data handling error: ttrpc: stream buffer full"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  // The connection goes on.
  ASSERT_OK(client_->Call(kInteropService, "Echo", Str("ok").SerializeAsString()));
}

TEST_F(TtrpcTest, LargeServerStreamWithSlowReader) {
  // 64 MiB through the write budget: the handler blocks in Send instead of queueing it all.
  ASSERT_OK(server_->RegisterStream("test.S", "Flood", kServerStreaming, [](ServerStream& s) {
    std::string chunk(64 * 1024, 'f');
    for (int i = 0; i < 1024; ++i) {
      absl::Status st = s.Send(chunk);
      if (!st.ok()) return absl::StatusOr<std::string>(st);
    }
    return absl::StatusOr<std::string>(std::string());
  }));
  auto s = client_->NewStream("test.S", "Flood", kServerStreaming, "");
  ASSERT_OK(s);
  std::string m;
  std::size_t bytes = 0;
  int n = 0;
  while ((*s)->Recv(&m)) {
    bytes += m.size();
    if (++n % 256 == 0) std::this_thread::sleep_for(10ms);
  }
  EXPECT_OK((*s)->Finish());
  EXPECT_EQ(bytes, 64u << 20);
}

TEST_F(TtrpcTest, AbandonedStreamDoesNotDisturbTheConnection) {
  {
    auto s = client_->NewStream(kInteropService, "Bidi", kBidi);
    ASSERT_OK(s);
    ASSERT_OK((*s)->SendMessage(Str("x")));
  }  // dropped without Finish
  auto r = client_->Call(kInteropService, "Echo", Str("ok").SerializeAsString());
  ASSERT_OK(r);
}

}  // namespace
}  // namespace kuasar::ttrpc
