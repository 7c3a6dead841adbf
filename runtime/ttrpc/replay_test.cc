// Adopted connections: the tag and stream id handlers see, and calls replayed onto a
// connection taken over from a crashed predecessor (the runc sandboxer's restart path).
#include <sys/socket.h>

#include <future>

#include <gtest/gtest.h>

#include "runtime/base/status_matchers.h"
#include "runtime/ttrpc/client.h"
#include "runtime/ttrpc/server.h"
#include "ttrpc/request.pb.h"

namespace kuasar::ttrpc {
namespace {

TEST(ReplayTest, ReplayedCallIsAnsweredOnItsStreamAndLiveCallsStillWork) {
  Server server;
  std::promise<std::pair<std::string, std::uint32_t>> seen;
  std::atomic<int> calls{0};
  ASSERT_OK(server.RegisterUnary("svc", "Wait",
                                 [&](CallContextPtr ctx, std::string req, UnaryResponder r) {
                                   if (calls++ == 0) seen.set_value({ctx->connection_tag(), ctx->stream_id()});
                                   r.Finish("answer:" + req);
                                 }));
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ::ttrpc::Request req;
  req.set_service("svc");
  req.set_method("Wait");
  req.set_payload("parked");
  ServeConnectionOptions opts;
  opts.tag = "conn-7";
  opts.replay.push_back({41, req.SerializeAsString()});
  ASSERT_OK(server.ServeConnection(UniqueFd(sv[0]), opts));

  // The peer (containerd in production) receives the answer on stream 41 unprompted.
  auto origin = seen.get_future().get();
  EXPECT_EQ(origin.first, "conn-7");
  EXPECT_EQ(origin.second, 41u);
  char header[10];
  ASSERT_EQ(::recv(sv[1], header, sizeof(header), MSG_WAITALL), 10);
  uint32_t len = (uint8_t(header[0]) << 24) | (uint8_t(header[1]) << 16) |
                 (uint8_t(header[2]) << 8) | uint8_t(header[3]);
  uint32_t id = (uint8_t(header[4]) << 24) | (uint8_t(header[5]) << 16) |
                (uint8_t(header[6]) << 8) | uint8_t(header[7]);
  EXPECT_EQ(id, 41u);
  EXPECT_EQ(header[8], 2);  // Response
  std::string body(len, '\0');
  ASSERT_EQ(::recv(sv[1], body.data(), len, MSG_WAITALL), static_cast<ssize_t>(len));
  ::ttrpc::Response resp;
  ASSERT_TRUE(resp.ParseFromString(body));
  EXPECT_EQ(resp.payload(), "answer:parked");

  // A client on the same connection carries on with higher stream ids.
  auto client = Client::FromFd(UniqueFd(sv[1]));
  ASSERT_OK(client);
  auto live = (*client)->Call("svc", "Wait", "live");
  ASSERT_OK(live);
  EXPECT_EQ(*live, "answer:live");
  (void)(*client)->Close();
  (void)server.Shutdown(std::chrono::milliseconds(100));
}

}  // namespace
}  // namespace kuasar::ttrpc
