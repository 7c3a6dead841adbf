// HostSessionRelay over a socketpair standing in for the fake VMM's virtio-serial stream:
// a host client that starts its stream ids over is served on a fresh ttrpc connection,
// the old client's late answers never reach it, and the relay ends with the stream.
#include "runtime/guest/host_session_relay.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "runtime/base/status_matchers.h"
#include "runtime/ttrpc/testing/raw_conn.h"

namespace kuasar::guest {
namespace {

using namespace std::chrono_literals;
using ttrpc::testing::RawConn;
using ttrpc::testing::RequestFrame;
using ttrpc::testing::ResponseStatus;

class HostSessionRelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(server_.RegisterUnary(
        "test.Relay", "Echo", [](ttrpc::CallContextPtr, std::string req, ttrpc::UnaryResponder r) {
          r.Finish(std::move(req));
        }));
    ASSERT_OK(server_.RegisterUnary(
        "test.Relay", "Park", [this](ttrpc::CallContextPtr, std::string, ttrpc::UnaryResponder r) {
          std::lock_guard<std::mutex> l(mu_);
          parked_.push_back(std::move(r));
        }));
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    host_.emplace(UniqueFd(sv[0]));
    auto relay = HostSessionRelay::Start(&server_, UniqueFd(sv[1]), "test");
    ASSERT_OK(relay);
    relay_ = std::move(*relay);
  }
  void TearDown() override {
    relay_.reset();
    (void)server_.Shutdown(0ms);
  }
  // Sends Echo on `id` and expects its OK answer.
  void Echo(uint32_t id) {
    ASSERT_TRUE(host_->Write(RequestFrame(id, "test.Relay", "Echo", "x")));
    auto f = host_->ReadFrame(3s);
    ASSERT_OK(f);
    EXPECT_EQ(f->header.stream_id, id);
    EXPECT_OK(ResponseStatus(*f));
  }
  size_t Parked() {
    std::lock_guard<std::mutex> l(mu_);
    return parked_.size();
  }

  ttrpc::Server server_;
  std::optional<RawConn> host_;
  std::unique_ptr<HostSessionRelay> relay_;
  std::mutex mu_;
  std::vector<ttrpc::UnaryResponder> parked_;
};

TEST_F(HostSessionRelayTest, AClientStartingOverAtStreamOneGetsAFreshConnection) {
  Echo(1);
  Echo(3);
  EXPECT_EQ(relay_->sessions(), 1u);
  // A restarted host (a new sandboxer) dials the same port: ids start over. One ttrpc
  // connection would answer "StreamID cannot be re-used and must increment".
  Echo(1);
  EXPECT_EQ(relay_->sessions(), 2u);
  Echo(3);
  EXPECT_EQ(relay_->sessions(), 2u);
}

TEST_F(HostSessionRelayTest, TheOldClientsLateAnswersDoNotReachTheNewOne) {
  ASSERT_TRUE(host_->Write(RequestFrame(1, "test.Relay", "Park", "")));
  ASSERT_TRUE(host_->Write(RequestFrame(3, "test.Relay", "Park", "")));
  for (int i = 0; i < 300 && Parked() < 2; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(Parked(), 2u);
  Echo(1);  // the new client; its id 1 collides with a parked call of the old one
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& r : parked_) r.Finish(std::string("late"));
  }
  auto f = host_->ReadFrame(300ms);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kDeadlineExceeded)
      << "stream " << (f.ok() ? f->header.stream_id : 0);
  Echo(3);
}

TEST_F(HostSessionRelayTest, EndsWhenTheStreamCloses) {
  Echo(1);
  host_.reset();
  for (int i = 0; i < 300 && relay_->running(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(relay_->running());
  for (int i = 0; i < 300 && server_.ConnectionCount() > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(server_.ConnectionCount(), 0u);
}

}  // namespace
}  // namespace kuasar::guest
