// The sandbox API over a real gRPC unix socket: the daemon with the fake backend,
// driven by SandboxClient exactly as containerd's proxy drives it.
#include <sys/stat.h>

#include <filesystem>
#include <future>

#include <gtest/gtest.h>

#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/client/sandbox_client.h"
#include "runtime/core/testing/fake_backend.h"
#include "runtime/server/sandboxer_daemon.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;
namespace sbapi = containerd::services::sandbox::v1;

class GrpcSandboxServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.sandboxer.state_dir = dir_.Sub("state");
    config_.sandboxer.listen = dir_.Sub("sb.sock");
    auto backend = std::make_unique<FakeBackend>();
    fake_ = backend.get();
    auto d = SandboxerDaemon::Start(config_, std::move(backend));
    ASSERT_OK(d);
    daemon_ = std::move(*d);
    client_ = std::make_unique<SandboxClient>(config_.sandboxer.listen);
    ASSERT_TRUE(client_->WaitReady(absl::Seconds(5)));
  }

  sbapi::ControllerCreateRequest CreateReq(const std::string& id) {
    sbapi::ControllerCreateRequest r;
    r.set_sandbox_id(id);
    r.set_netns_path("/var/run/netns/x");
    auto* m = r.add_rootfs();
    m->set_type("overlay");
    m->set_source("overlay");
    m->add_options("lowerdir=/l");
    r.mutable_options()->set_type_url("type.googleapis.com/runtime.v1.PodSandboxConfig");
    r.mutable_options()->set_value(std::string("\x0a\x02hi", 4));
    (*r.mutable_annotations())["a"] = "b";
    return r;
  }

  TempDir dir_;
  Config config_;
  FakeBackend* fake_ = nullptr;
  std::unique_ptr<SandboxerDaemon> daemon_;
  std::unique_ptr<SandboxClient> client_;
};

TEST_F(GrpcSandboxServiceTest, SocketIsGroupOnly) {
  struct stat st {};
  ASSERT_EQ(::stat(config_.sandboxer.listen.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

TEST_F(GrpcSandboxServiceTest, LifecycleOverTheWire) {
  ASSERT_OK(client_->Create(CreateReq("sb1")));
  auto rec = daemon_->controller().GetRecord("sb1");
  ASSERT_OK(rec);
  EXPECT_EQ(rec->rootfs.size(), 1u);
  EXPECT_EQ(rec->options_bytes, std::string("\x0a\x02hi", 4));
  EXPECT_EQ(rec->annotations.at("a"), "b");

  auto started = client_->Start("sb1");
  ASSERT_OK(started);
  EXPECT_EQ(started->address(), "ttrpc+unix:///fake/sb1.sock");
  EXPECT_EQ(started->version(), 3u);
  EXPECT_GT(started->created_at().seconds(), 0);

  auto status = client_->StatusProto("sb1", true);
  ASSERT_OK(status);
  EXPECT_EQ(status->state(), "SANDBOX_READY");
  EXPECT_EQ(status->info().at("kuasar.kind"), "fake");

  auto platform = client_->Platform("sb1");
  ASSERT_OK(platform);
  EXPECT_EQ(platform->os, "linux");

  auto metrics = client_->Metrics("sb1");
  ASSERT_OK(metrics);
  EXPECT_EQ(metrics->metrics().id(), "sb1");

  auto waited = std::async(std::launch::async, [&] { return client_->Wait("sb1"); });
  EXPECT_EQ(waited.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  ASSERT_OK(client_->Stop("sb1", 1));
  auto exit = waited.get();
  ASSERT_OK(exit);
  EXPECT_GT(exit->exited_at().seconds(), 0);
  EXPECT_EQ(client_->StatusProto("sb1", false)->state(), "SANDBOX_NOTREADY");
  ASSERT_OK(client_->Shutdown("sb1"));
  EXPECT_THAT(client_->StatusProto("sb1", false), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(GrpcSandboxServiceTest, ErrorsKeepTheirCodes) {
  EXPECT_THAT(client_->Start("missing"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing")));
  EXPECT_THAT(client_->Create(CreateReq("../../etc")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK(client_->Create(CreateReq("dup")));
  EXPECT_THAT(client_->Create(CreateReq("dup")), StatusIs(absl::StatusCode::kAlreadyExists));
  fake_->FailNext("start", absl::UnavailableError("vmm refused"));
  EXPECT_THAT(client_->Start("dup"), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("vmm refused")));
  // The daemon keeps serving after errors.
  EXPECT_OK(client_->Platform(""));
}

TEST_F(GrpcSandboxServiceTest, ManyParkedWaitsDoNotBlockOtherCalls) {
  std::vector<std::future<absl::StatusOr<sbapi::ControllerWaitResponse>>> waits;
  for (int i = 0; i < 32; ++i) {
    std::string id = "w" + std::to_string(i);
    ASSERT_OK(client_->Create(CreateReq(id)));
    ASSERT_OK(client_->Start(id));
    waits.push_back(std::async(std::launch::async, [this, id] { return client_->Wait(id); }));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // More waits than worker threads are parked; other calls still answer.
  ASSERT_OK(client_->Create(CreateReq("other")));
  for (int i = 0; i < 32; ++i) fake_->Exit("w" + std::to_string(i), static_cast<uint32_t>(i));
  for (int i = 0; i < 32; ++i) {
    auto r = waits[i].get();
    ASSERT_OK(r);
    EXPECT_EQ(r->exit_status(), static_cast<uint32_t>(i));
  }
}

TEST_F(GrpcSandboxServiceTest, ShutdownRemovesSocketAndRefusesSecondDaemon) {
  Config second = config_;
  second.sandboxer.state_dir = dir_.Sub("state2");
  EXPECT_THAT(SandboxerDaemon::Start(second, std::make_unique<FakeBackend>()),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("listening")));
  daemon_->Shutdown();
  EXPECT_FALSE(std::filesystem::exists(config_.sandboxer.listen));
}

TEST_F(GrpcSandboxServiceTest, RestartRecoversOverTheWire) {
  ASSERT_OK(client_->Create(CreateReq("keep")));
  ASSERT_OK(client_->Start("keep"));
  daemon_->Shutdown();
  daemon_.reset();
  // The fake backend died with the daemon; a fresh one does not know "keep", so the
  // restarted daemon must report it as exited, not lose it.
  auto d = SandboxerDaemon::Start(config_, std::make_unique<FakeBackend>());
  ASSERT_OK(d);
  EXPECT_EQ((*d)->recovery().recovered_stopped, 1);
  SandboxClient client(config_.sandboxer.listen);
  ASSERT_TRUE(client.WaitReady(absl::Seconds(5)));
  auto st = client.StatusProto("keep", false);
  ASSERT_OK(st);
  EXPECT_EQ(st->state(), "SANDBOX_NOTREADY");
  auto exit = client.Wait("keep", absl::Seconds(5));
  ASSERT_OK(exit);
  EXPECT_EQ(exit->exit_status(), 137u);
}

}  // namespace
}  // namespace kuasar
