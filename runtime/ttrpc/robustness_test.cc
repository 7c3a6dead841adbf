// Connection-level behaviour: dropped connections, graceful shutdown, hostile peers
// (slow-loris, garbage, oversized frames, bad stream ids), several listeners, and
// serving an already-connected fd.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <atomic>
#include <future>
#include <thread>

#include "absl/strings/str_cat.h"
#include "runtime/ttrpc/testing/raw_conn.h"
#include "runtime/ttrpc/testing/ttrpc_fixture.h"
#include "runtime/ttrpc/typed_client.h"

namespace kuasar::ttrpc {
namespace {

using google::protobuf::StringValue;
using kuasar::testing::StatusIs;
using ::testing::HasSubstr;
using testing::I64;
using testing::kInteropService;
using testing::RawConn;
using testing::RequestFrame;
using testing::ResponseStatus;
using testing::Str;
using testing::TtrpcTest;

using namespace std::chrono_literals;

void ExpectEchoWorks(Client& client, std::chrono::milliseconds within = 1000ms) {
  auto start = std::chrono::steady_clock::now();
  auto r = CallMethod<StringValue>(client, kInteropService, "Echo", Str("ping"));
  ASSERT_OK(r);
  EXPECT_EQ(r->value(), "ping");
  EXPECT_LT(std::chrono::steady_clock::now() - start, within);
}

TEST(ConnectionDropTest, PendingCallsFailWithUnavailable) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd peer(sv[1]);
  auto client = Client::FromFd(UniqueFd(sv[0]));
  ASSERT_OK(client);
  std::vector<std::future<absl::StatusOr<std::string>>> pending;
  for (int i = 0; i < 20; ++i) {
    auto p = std::make_shared<std::promise<absl::StatusOr<std::string>>>();
    pending.push_back(p->get_future());
    (*client)->CallAsync("svc", "M", "x", {},
                         [p](absl::StatusOr<std::string> r) { p->set_value(std::move(r)); });
  }
  auto stream = (*client)->NewStream("svc", "S", {.client_streaming = true,
                                                  .server_streaming = true});
  ASSERT_OK(stream);
  std::this_thread::sleep_for(50ms);
  auto start = std::chrono::steady_clock::now();
  peer.Reset();  // the server dies
  for (auto& f : pending) {
    ASSERT_EQ(f.wait_for(2s), std::future_status::ready);
    EXPECT_THAT(f.get(), StatusIs(absl::StatusCode::kUnavailable));
  }
  EXPECT_THAT((*stream)->Finish(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_THAT((*client)->Call("svc", "M", "x"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_FALSE((*client)->IsConnected());
}

TEST(ConnectionDropTest, OnDisconnectRuns) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd peer(sv[1]);
  std::promise<absl::Status> why;
  ClientOptions opts;
  opts.on_disconnect = [&](const absl::Status& s) { why.set_value(s); };
  auto client = Client::FromFd(UniqueFd(sv[0]), opts);
  ASSERT_OK(client);
  peer.Reset();
  auto f = why.get_future();
  ASSERT_EQ(f.wait_for(2s), std::future_status::ready);
  EXPECT_THAT(f.get(), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(TtrpcTest, GracefulShutdownLetsInflightCallFinish) {
  std::promise<absl::StatusOr<std::string>> result;
  client_->CallAsync(kInteropService, "Sleep", I64(300).SerializeAsString(), {},
                     [&](absl::StatusOr<std::string> r) { result.set_value(std::move(r)); });
  std::this_thread::sleep_for(50ms);
  auto idle = NewClient();  // an idle connection is closed at once
  ASSERT_NE(idle, nullptr);
  auto start = std::chrono::steady_clock::now();
  EXPECT_OK(server_->Shutdown(5s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
  EXPECT_OK(result.get_future().get());
  EXPECT_EQ(server_->ConnectionCount(), 0u);
  EXPECT_FALSE(Client::Connect(path_).ok());
  struct stat st {};
  EXPECT_NE(::stat(path_.c_str(), &st), 0) << "socket file left behind";
}

TEST_F(TtrpcTest, ShutdownGraceRunsOutAndCancelsCalls) {
  std::promise<absl::StatusOr<std::string>> result;
  client_->CallAsync(kInteropService, "Sleep", I64(30'000).SerializeAsString(), {},
                     [&](absl::StatusOr<std::string> r) { result.set_value(std::move(r)); });
  std::this_thread::sleep_for(50ms);
  EXPECT_THAT(server_->Shutdown(200ms), StatusIs(absl::StatusCode::kDeadlineExceeded));
  auto f = result.get_future();
  ASSERT_EQ(f.wait_for(2s), std::future_status::ready);
  EXPECT_THAT(f.get(), StatusIs(absl::StatusCode::kUnavailable));
}

class HostilePeerTest : public TtrpcTest {
 protected:
  ServerOptions MakeServerOptions() override {
    ServerOptions o;
    o.partial_frame_timeout = 300ms;
    return o;
  }
};

TEST_F(HostilePeerTest, SlowLorisIsClosedAndDoesNotBlockOthers) {
  auto loris = RawConn::Connect(path_);
  ASSERT_OK(loris);
  std::string frame = RequestFrame(1, kInteropService, "Echo", Str("x").SerializeAsString());
  ASSERT_TRUE(loris->Write(frame.substr(0, 5)));  // half a header, then nothing
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) ExpectEchoWorks(*client_, 200ms);
  EXPECT_TRUE(loris->WaitClosed(3s));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 2s);
  // A frame trickled byte by byte is closed too, even though bytes keep coming.
  auto trickle = RawConn::Connect(path_);
  ASSERT_OK(trickle);
  bool closed = false;
  for (std::size_t i = 0; i < frame.size() - 1 && !closed; ++i) {
    if (!trickle->Write(frame.substr(i, 1))) closed = true;
    std::this_thread::sleep_for(50ms);
    ExpectEchoWorks(*client_, 200ms);
    if (trickle->WaitClosed(1ms)) closed = true;
  }
  EXPECT_TRUE(closed || trickle->WaitClosed(1s));
  ExpectEchoWorks(*client_);
}

TEST_F(HostilePeerTest, GarbageClosesOnlyThatConnection) {
  auto bad = RawConn::Connect(path_);
  ASSERT_OK(bad);
  ASSERT_TRUE(bad->Write("GET / HTTP/1.1\r\nHost: kuasar\r\n\r\n"));
  EXPECT_TRUE(bad->WaitClosed(2s));
  ExpectEchoWorks(*client_);
  EXPECT_EQ(server_->ConnectionCount(), 1u);
}

TEST_F(HostilePeerTest, OversizedFrameIsRefusedAndConnectionSurvives) {
  auto raw = RawConn::Connect(path_);
  ASSERT_OK(raw);
  char header[kFrameHeaderSize];
  EncodeFrameHeader({kMaxMessageSize + 1, 1, 1, 0}, header);
  ASSERT_TRUE(raw->Write(std::string_view(header, sizeof(header))));
  ASSERT_TRUE(raw->Write(std::string(kMaxMessageSize + 1, 'o')));
  auto f = raw->ReadFrame(3s);
  ASSERT_OK(f);
  EXPECT_EQ(f->header.stream_id, 1u);
  EXPECT_THAT(ResponseStatus(*f),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       "message length 4194305 exceed maximum message size of 4194304"));
  ASSERT_TRUE(raw->Write(RequestFrame(3, kInteropService, "Echo", Str("y").SerializeAsString())));
  f = raw->ReadFrame(3s);
  ASSERT_OK(f);
  EXPECT_EQ(f->header.stream_id, 3u);
  EXPECT_OK(ResponseStatus(*f));
}

TEST_F(HostilePeerTest, StreamIdRulesFollowGo) {
  auto raw = RawConn::Connect(path_);
  ASSERT_OK(raw);
  auto expect_status = [&](std::uint32_t id, absl::StatusCode code, const char* msg) {
    auto f = raw->ReadFrame(3s);
    ASSERT_OK(f);
    EXPECT_EQ(f->header.stream_id, id);
    EXPECT_THAT(ResponseStatus(*f), StatusIs(code, msg));
  };
  std::string echo = Str("x").SerializeAsString();
  ASSERT_TRUE(raw->Write(RequestFrame(2, kInteropService, "Echo", echo)));
  expect_status(2, absl::StatusCode::kInvalidArgument,
                "StreamID must be odd for client initiated streams");
  ASSERT_TRUE(raw->Write(RequestFrame(5, kInteropService, "Echo", echo)));
  expect_status(5, absl::StatusCode::kOk, "");
  ASSERT_TRUE(raw->Write(RequestFrame(3, kInteropService, "Echo", echo)));
  expect_status(3, absl::StatusCode::kInvalidArgument,
                "StreamID cannot be re-used and must increment");
  ASSERT_TRUE(raw->Write(EncodeFrame(7, MessageType::kData, 0, "d")));
  expect_status(7, absl::StatusCode::kInvalidArgument, "StreamID is no longer active");
  ASSERT_TRUE(raw->Write(EncodeFrame(9, MessageType::kRequest, 0, "\xff\xff")));
  auto f = raw->ReadFrame(3s);
  ASSERT_OK(f);
  EXPECT_THAT(ResponseStatus(*f),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unmarshal request error")));
  // Unknown message types are ignored, for forward compatibility.
  ASSERT_TRUE(raw->Write(EncodeFrame(11, static_cast<MessageType>(9), 0, "future")));
  ASSERT_TRUE(raw->Write(RequestFrame(13, kInteropService, "Echo", echo)));
  expect_status(13, absl::StatusCode::kOk, "");
}

TEST(ListenerTest, MultipleListenersAndStopListening) {
  TempDir dir("ttrpc");
  Server server;
  ASSERT_OK(testing::RegisterInteropService(server));
  std::vector<std::string> paths = {dir.Sub("a.sock"), dir.Sub("pods/b.sock"), dir.Sub("c.sock")};
  for (const auto& p : paths) ASSERT_OK(server.Listen(p));
  EXPECT_THAT(server.Listen(paths[0]), StatusIs(absl::StatusCode::kAlreadyExists));
  std::vector<std::unique_ptr<Client>> clients;
  for (const auto& p : paths) {
    auto c = Client::Connect(p);
    ASSERT_OK(c);
    ExpectEchoWorks(**c);
    clients.push_back(*std::move(c));
  }
  ASSERT_OK(server.StopListening(paths[1]));
  EXPECT_THAT(server.StopListening(paths[1]), StatusIs(absl::StatusCode::kNotFound));
  struct stat st {};
  EXPECT_NE(::stat(paths[1].c_str(), &st), 0);
  EXPECT_FALSE(Client::Connect(paths[1]).ok());
  ExpectEchoWorks(*clients[1]);  // accepted connections stay
  auto again = Client::Connect(paths[2]);
  ASSERT_OK(again);
  ExpectEchoWorks(**again);
  EXPECT_EQ(server.ListeningPaths().size(), 2u);
}

TEST(ListenerTest, SocketModeAndStaleSocket) {
  TempDir dir("ttrpc");
  std::string path = dir.Sub("t.sock");
  {
    // A stale socket file left by a crashed process: bound, never listened, closed.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);
  }
  Server a;
  ASSERT_OK(a.Listen(path));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Server b;
  EXPECT_THAT(b.Listen(path), StatusIs(absl::StatusCode::kAlreadyExists));
  std::string other = dir.Sub("g.sock");
  ASSERT_OK(b.Listen(other, 0660));
  ASSERT_EQ(::stat(other.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

TEST(ServeConnectionTest, OverASocketpair) {
  Server server;
  ASSERT_OK(testing::RegisterInteropService(server));
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ASSERT_OK(server.ServeConnection(UniqueFd(sv[0])));
  auto client = Client::FromFd(UniqueFd(sv[1]));
  ASSERT_OK(client);
  ExpectEchoWorks(**client);
  auto s = (*client)->NewStream(kInteropService, "Bidi",
                                {.client_streaming = true, .server_streaming = true});
  ASSERT_OK(s);
  ASSERT_OK((*s)->SendMessage(Str("v")));
  std::string m;
  ASSERT_TRUE((*s)->Recv(&m));
  EXPECT_OK((*s)->Finish());
  EXPECT_EQ(server.ConnectionCount(), 1u);
  ASSERT_OK(server.Shutdown(1s));
  EXPECT_THAT((*client)->Call(kInteropService, "Echo", ""),
              StatusIs(absl::StatusCode::kUnavailable));
}

// on_closed: once per connection, whether the peer hangs up or the server shuts down;
// Shutdown returns only after it ran (the guest agent reopens a serial port from it).
TEST(ServeConnectionTest, OnClosedRunsOncePerConnection) {
  Server server;
  ASSERT_OK(testing::RegisterInteropService(server));
  std::promise<void> hung_up;
  std::atomic<int> hung_up_calls{0}, shut_calls{0};
  int a[2], b[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), 0);
  ServeConnectionOptions oa;
  oa.on_closed = [&](const absl::Status&) {
    if (hung_up_calls++ == 0) hung_up.set_value();
  };
  ASSERT_OK(server.ServeConnection(UniqueFd(a[0]), std::move(oa)));
  ServeConnectionOptions ob;
  ob.on_closed = [&](const absl::Status&) { ++shut_calls; };
  ASSERT_OK(server.ServeConnection(UniqueFd(b[0]), std::move(ob)));
  auto kept = Client::FromFd(UniqueFd(b[1]));
  ASSERT_OK(kept);
  {
    auto client = Client::FromFd(UniqueFd(a[1]));
    ASSERT_OK(client);
    ExpectEchoWorks(**client);
  }  // the peer hangs up
  ASSERT_EQ(hung_up.get_future().wait_for(5s), std::future_status::ready);
  ExpectEchoWorks(**kept);
  EXPECT_EQ(shut_calls.load(), 0);
  ASSERT_OK(server.Shutdown(1s));
  EXPECT_EQ(shut_calls.load(), 1);
  EXPECT_EQ(hung_up_calls.load(), 1);
}

}  // namespace
}  // namespace kuasar::ttrpc
