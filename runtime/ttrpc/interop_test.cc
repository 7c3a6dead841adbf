// Interop with the reference implementation, containerd/ttrpc (Go), both ways:
// our Client against the Go server, and the Go client against our Server. The Go side
// is fixtures/ttrpc-interop, built by CMake (target ttrpc_interop_go); the binary comes
// from $KUASAR_TTRPC_INTEROP_BIN or the build dir, and the tests skip without it.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "runtime/base/child_process.h"
#include "runtime/ttrpc/testing/raw_conn.h"
#include "runtime/ttrpc/testing/ttrpc_fixture.h"
#include "runtime/ttrpc/typed_client.h"

#ifndef KUASAR_TTRPC_INTEROP_BIN
#define KUASAR_TTRPC_INTEROP_BIN ""
#endif

namespace kuasar::ttrpc {
namespace {

using google::protobuf::Empty;
using google::protobuf::Int32Value;
using google::protobuf::Int64Value;
using google::protobuf::StringValue;
using kuasar::testing::StatusIs;
using ::testing::HasSubstr;
using testing::I64;
using testing::kInteropService;
using testing::RawConn;
using testing::RequestFrame;
using testing::ResponseStatus;
using testing::Str;

using namespace std::chrono_literals;

std::string InteropBinary() {
  const char* env = std::getenv("KUASAR_TTRPC_INTEROP_BIN");
  std::string path = env != nullptr && *env != '\0' ? env : KUASAR_TTRPC_INTEROP_BIN;
  return !path.empty() && ::access(path.c_str(), X_OK) == 0 ? path : "";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class InteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bin_ = InteropBinary();
    if (bin_.empty()) {
      GTEST_SKIP() << "Go interop binary not built (no `go` at configure time?); set "
                      "KUASAR_TTRPC_INTEROP_BIN or build target ttrpc_interop_go";
    }
  }

  absl::StatusOr<ChildProcess> SpawnGo(const std::string& mode, const std::string& socket,
                                       const std::string& log) {
    UniqueFd out(::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    SpawnOptions opts;
    opts.stdout_fd = out.get();
    opts.stderr_fd = out.get();
    return ChildProcess::Spawn({bin_, mode, "--socket", socket}, opts);
  }

  std::string bin_;
  TempDir dir_{"ttrpc-interop"};
};

// What Go ttrpc's server.go answers to hand-built frames, checked against `path`.
void CheckRawProtocol(const std::string& path) {
  auto raw = RawConn::Connect(path);
  ASSERT_OK(raw);
  auto expect = [&](std::uint32_t id, absl::StatusCode code, auto message_matcher) {
    auto f = raw->ReadFrame(5s);
    ASSERT_OK(f);
    EXPECT_EQ(f->header.stream_id, id);
    EXPECT_THAT(ResponseStatus(*f), StatusIs(code, message_matcher));
  };
  const std::string echo = Str("x").SerializeAsString();
  ASSERT_TRUE(raw->Write(RequestFrame(2, kInteropService, "Echo", echo)));
  expect(2, absl::StatusCode::kInvalidArgument,
         "StreamID must be odd for client initiated streams");
  ASSERT_TRUE(raw->Write(RequestFrame(5, kInteropService, "Echo", echo)));
  expect(5, absl::StatusCode::kOk, "");
  ASSERT_TRUE(raw->Write(RequestFrame(3, kInteropService, "Echo", echo)));
  expect(3, absl::StatusCode::kInvalidArgument, "StreamID cannot be re-used and must increment");
  ASSERT_TRUE(raw->Write(EncodeFrame(7, MessageType::kData, 0, "d")));
  expect(7, absl::StatusCode::kInvalidArgument, "StreamID is no longer active");
  ASSERT_TRUE(raw->Write(EncodeFrame(9, MessageType::kRequest, 0, "\xff\xff")));
  expect(9, absl::StatusCode::kInvalidArgument, HasSubstr("unmarshal request error"));
  ASSERT_TRUE(raw->Write(EncodeFrame(11, static_cast<MessageType>(9), 0, "future")));
  ASSERT_TRUE(raw->Write(RequestFrame(13, kInteropService, "Sleep",
                                      I64(10'000).SerializeAsString(), 200'000'000)));
  expect(13, absl::StatusCode::kDeadlineExceeded, "context deadline exceeded");
  char header[kFrameHeaderSize];
  EncodeFrameHeader({kMaxMessageSize + 1, 15, 1, 0}, header);
  ASSERT_TRUE(raw->Write(std::string_view(header, sizeof(header))));
  ASSERT_TRUE(raw->Write(std::string(kMaxMessageSize + 1, 'o')));
  expect(15, absl::StatusCode::kResourceExhausted,
         "message length 4194305 exceed maximum message size of 4194304");
  ASSERT_TRUE(raw->Write(RequestFrame(17, "no.such.Service", "Echo", echo)));
  expect(17, absl::StatusCode::kUnimplemented, "service no.such.Service");
  ASSERT_TRUE(raw->Write(RequestFrame(19, kInteropService, "Nope", echo)));
  expect(19, absl::StatusCode::kUnimplemented, "method Nope");
}

void CheckWithOurClient(Client& client) {
  for (std::string v : {std::string("hello"), std::string(), std::string(1 << 20, 'x')}) {
    auto r = CallMethod<StringValue>(client, kInteropService, "Echo", Str(v));
    ASSERT_OK(r);
    EXPECT_EQ(r->value(), v);
  }
  for (int code = 1; code <= 16; ++code) {
    EXPECT_THAT(client.Call(kInteropService, "Fail",
                            Str(absl::StrCat(code, ":failure ", code)).SerializeAsString()),
                StatusIs(static_cast<absl::StatusCode>(code), absl::StrCat("failure ", code)));
  }
  CallOptions md;
  md.metadata = {{"foo", "bar"}, {"foo", "baz"}, {"x-id", "42"}};
  auto m = CallMethod<StringValue>(client, kInteropService, "Metadata", Empty(), md);
  ASSERT_OK(m);
  EXPECT_EQ(m->value(), "foo=bar;foo=baz;x-id=42");
  CallOptions five;
  five.timeout = 5s;
  auto dl = CallMethod<Int64Value>(client, kInteropService, "Deadline", Empty(), five);
  ASSERT_OK(dl);
  EXPECT_GT(dl->value(), 3000);
  EXPECT_LE(dl->value(), 5000);
  CallOptions short_timeout;
  short_timeout.timeout = 200ms;
  EXPECT_THAT(client.Call(kInteropService, "Sleep", I64(10'000).SerializeAsString(),
                          short_timeout),
              StatusIs(absl::StatusCode::kDeadlineExceeded));

  // 200 calls in flight at once from 8 threads.
  std::atomic<int> ok{0}, done{0};
  std::promise<void> all;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        std::string v = absl::StrCat(t, "-", i);
        client.CallAsync(kInteropService, "Echo", Str(v).SerializeAsString(), {},
                         [&, v](absl::StatusOr<std::string> r) {
                           StringValue s;
                           if (r.ok() && s.ParseFromString(*r) && s.value() == v) ++ok;
                           if (++done == 200) all.set_value();
                         });
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(all.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_EQ(ok.load(), 200);

  for (int n : {0, 5}) {
    Int32Value req;
    req.set_value(n);
    auto s = client.NewStream(kInteropService, "ServerStream",
                              {.client_streaming = false, .server_streaming = true},
                              req.SerializeAsString());
    ASSERT_OK(s);
    StringValue msg;
    int got = 0;
    while (*(*s)->RecvMessage(&msg)) EXPECT_EQ(msg.value(), absl::StrCat("msg-", got++));
    EXPECT_EQ(got, n);
    EXPECT_OK((*s)->Finish());
  }
  {
    auto s = client.NewStream(kInteropService, "ClientStream",
                              {.client_streaming = true, .server_streaming = false});
    ASSERT_OK(s);
    for (const char* v : {"a", "b", "c"}) ASSERT_OK((*s)->SendMessage(Str(v)));
    ASSERT_OK((*s)->CloseSend());
    StringValue resp;
    ASSERT_TRUE(*(*s)->RecvMessage(&resp));
    EXPECT_EQ(resp.value(), "a,b,c");
    EXPECT_OK((*s)->Finish());
  }
  {
    auto s = client.NewStream(kInteropService, "Bidi",
                              {.client_streaming = true, .server_streaming = true});
    ASSERT_OK(s);
    StringValue msg;
    for (int i = 0; i < 20; ++i) {
      ASSERT_OK((*s)->SendMessage(Str(absl::StrCat("m", i))));
      ASSERT_TRUE(*(*s)->RecvMessage(&msg));
      EXPECT_EQ(msg.value(), absl::StrCat("echo:m", i));
    }
    ASSERT_OK((*s)->CloseSend());
    EXPECT_FALSE(*(*s)->RecvMessage(&msg));
    EXPECT_OK((*s)->Finish());
  }
  EXPECT_THAT(client.Call("no.such.Service", "Echo", ""),
              StatusIs(absl::StatusCode::kUnimplemented, "service no.such.Service"));
}

TEST_F(InteropTest, OurClientAgainstGoServer) {
  const std::string socket = dir_.Sub("go.sock");
  const std::string log = dir_.Sub("go-server.log");
  auto go = SpawnGo("server", socket, log);
  ASSERT_OK(go);
  std::unique_ptr<Client> client;
  for (int i = 0; i < 200 && !client; ++i) {
    auto c = Client::Connect(socket);
    if (c.ok()) {
      client = *std::move(c);
    } else {
      std::this_thread::sleep_for(50ms);
    }
  }
  ASSERT_NE(client, nullptr) << "Go server did not come up:\n" << ReadFile(log);
  CheckWithOurClient(*client);
  CheckRawProtocol(socket);
  ASSERT_OK(client->Close());
  ASSERT_OK(go->Signal(SIGTERM));
  auto status = go->WaitFor(10s);
  ASSERT_OK(status);
  EXPECT_EQ(ExitCodeFromWaitStatus(*status), 0) << ReadFile(log);
}

TEST_F(InteropTest, GoClientAgainstOurServer) {
  const std::string socket = dir_.Sub("cc.sock");
  const std::string log = dir_.Sub("go-client.log");
  Server server;
  ASSERT_OK(testing::RegisterInteropService(server));
  ASSERT_OK(server.Listen(socket));
  auto go = SpawnGo("client", socket, log);
  ASSERT_OK(go);
  auto status = go->WaitFor(60s);
  ASSERT_OK(status);
  std::string output = ReadFile(log);
  EXPECT_EQ(ExitCodeFromWaitStatus(*status), 0) << output;
  EXPECT_THAT(output, HasSubstr("all checks passed")) << output;
  std::cout << output;
}

TEST_F(InteropTest, GoClientLatencyAgainstBothServers) {
  // Not a pass/fail benchmark: prints the Go client's mean round trip against the Go
  // server and against ours, so docs/ttrpc.md can compare them on one machine.
  const std::string go_socket = dir_.Sub("go.sock");
  auto go_server = SpawnGo("server", go_socket, dir_.Sub("go-server.log"));
  ASSERT_OK(go_server);
  Server server;
  ASSERT_OK(testing::RegisterInteropService(server));
  const std::string cc_socket = dir_.Sub("cc.sock");
  ASSERT_OK(server.Listen(cc_socket));
  for (int i = 0; i < 200 && !Client::Connect(go_socket).ok(); ++i) std::this_thread::sleep_for(50ms);
  for (const auto& [name, socket] : {std::pair<std::string, std::string>{"go-server", go_socket},
                                     {"cc-server", cc_socket}}) {
    for (const char* size : {"16", "65536"}) {
      const std::string log = dir_.Sub(absl::StrCat("bench-", name, "-", size, ".log"));
      UniqueFd out(::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      SpawnOptions opts;
      opts.stdout_fd = out.get();
      opts.stderr_fd = out.get();
      auto bench = ChildProcess::Spawn(
          {bin_, "bench", "--socket", socket, "--n", "5000", "--size", size}, opts);
      ASSERT_OK(bench);
      auto status = bench->WaitFor(60s);
      ASSERT_OK(status);
      EXPECT_EQ(ExitCodeFromWaitStatus(*status), 0) << ReadFile(log);
      std::cout << "go-client -> " << name << ": " << ReadFile(log);
    }
  }
  ASSERT_OK(go_server->Signal(SIGTERM));
  EXPECT_OK(go_server->WaitFor(10s));
}

TEST_F(InteropTest, RawFramesGetTheSameAnswersFromOurServer) {
  // The same hand-built frames as against Go (CheckRawProtocol), against our server.
  const std::string socket = dir_.Sub("raw.sock");
  Server server;
  ASSERT_OK(testing::RegisterInteropService(server));
  ASSERT_OK(server.Listen(socket));
  CheckRawProtocol(socket);
}

}  // namespace
}  // namespace kuasar::ttrpc
