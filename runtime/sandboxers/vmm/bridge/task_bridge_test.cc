#include "runtime/sandboxers/vmm/bridge/task_bridge.h"

#include <sys/socket.h>

#include <future>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <gtest/gtest.h>

#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/ttrpc/client.h"
#include "runtime/ttrpc/server.h"
#include "runtime/ttrpc/server_stream.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

class RewritingInterceptor : public TaskBridge::Interceptor {
 public:
  absl::StatusOr<std::string> OnRequest(const std::string&, const std::string& method,
                                        std::string payload) override {
    if (method == "Forbidden") return absl::PermissionDeniedError("not through the bridge");
    if (method == "Rewrite") return "rewritten:" + payload;
    return payload;
  }
  void OnResponse(const std::string&, const std::string& method, const std::string&,
                  bool ok) override {
    if (method == "Rewrite" && ok) ++rewrites_answered;
  }
  std::atomic<int> rewrites_answered{0};
};

class TaskBridgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(agent_.RegisterUnary("svc", "Echo", [](ttrpc::CallContextPtr, std::string req,
                                                     ttrpc::UnaryResponder r) { r.Finish(req); }));
    ASSERT_OK(agent_.RegisterUnary("svc", "Rewrite", [](ttrpc::CallContextPtr, std::string req,
                                                        ttrpc::UnaryResponder r) { r.Finish(req); }));
    ASSERT_OK(agent_.RegisterStream("svc", "Count", {false, true},
                                    [](ttrpc::ServerStream& s) -> absl::StatusOr<std::string> {
                                      for (int i = 0; i < 5; ++i) {
                                        if (!s.Send(std::to_string(i)).ok()) break;
                                      }
                                      return std::string();
                                    }));
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ASSERT_OK(agent_.ServeConnection(UniqueFd(sv[0])));
    auto bridge = TaskBridge::Start(io_, UniqueFd(sv[1]), dir_.Sub("task.sock"), &interceptor_);
    ASSERT_OK(bridge);
    bridge_ = *bridge;
    io_thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (bridge_) bridge_->Close();
    bridge_.reset();
    (void)agent_.Shutdown(std::chrono::milliseconds(100));
    work_.reset();
    io_.stop();
    io_thread_.join();
  }

  std::unique_ptr<ttrpc::Client> Dial() {
    auto c = ttrpc::Client::Connect(dir_.Sub("task.sock"));
    EXPECT_OK(c);
    return c.ok() ? std::move(*c) : nullptr;
  }

  TempDir dir_{"kbr"};
  ttrpc::Server agent_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  std::thread io_thread_;
  RewritingInterceptor interceptor_;
  std::shared_ptr<TaskBridge> bridge_;
};

TEST_F(TaskBridgeTest, ManyConnectionsShareOneStream) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int c = 0; c < 4; ++c) {
    threads.emplace_back([&, c] {
      auto client = Dial();
      if (!client) return;
      for (int i = 0; i < 100; ++i) {
        std::string msg = "c" + std::to_string(c) + "-" + std::to_string(i);
        auto r = client->Call("svc", "Echo", msg);
        if (r.ok() && *r == msg) ++ok;
      }
      (void)client->Close();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 400);
}

TEST_F(TaskBridgeTest, ServerStreamsAreRelayed) {
  auto client = Dial();
  ASSERT_TRUE(client);
  auto stream = client->NewStream("svc", "Count", {false, true}, "go");
  ASSERT_OK(stream);
  std::vector<std::string> got;
  std::string m;
  while ((*stream)->Recv(&m)) got.push_back(m);
  EXPECT_EQ(got, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
  // The connection still serves unary calls afterwards.
  EXPECT_EQ(*client->Call("svc", "Echo", "after"), "after");
}

TEST_F(TaskBridgeTest, InterceptorRewritesAndRefuses) {
  auto client = Dial();
  ASSERT_TRUE(client);
  EXPECT_EQ(*client->Call("svc", "Rewrite", "x"), "rewritten:x");
  EXPECT_THAT(client->Call("svc", "Forbidden", "x"),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("bridge")));
  EXPECT_THAT(client->Call("svc", "Nope", "x"), StatusIs(absl::StatusCode::kUnimplemented));
  for (int i = 0; i < 100 && interceptor_.rewrites_answered == 0; ++i) ::usleep(1000);
  EXPECT_EQ(interceptor_.rewrites_answered.load(), 1);
}

TEST_F(TaskBridgeTest, AgentGoingAwayClosesEveryone) {
  std::promise<absl::Status> closed;
  bridge_->OnUpstreamClosed([&](const absl::Status& s) { closed.set_value(s); });
  auto client = Dial();
  ASSERT_TRUE(client);
  ASSERT_OK(client->Call("svc", "Echo", "hi"));
  (void)agent_.Shutdown(std::chrono::milliseconds(0));
  auto f = closed.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  for (int i = 0; i < 200 && client->IsConnected(); ++i) ::usleep(5000);
  EXPECT_FALSE(client->IsConnected());
  EXPECT_THAT(client->Call("svc", "Echo", "x"), StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace kuasar
