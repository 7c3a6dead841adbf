#include "runtime/core/sandbox_controller.h"

#include <filesystem>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "runtime/base/atomic_file.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/core/testing/fake_backend.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.sandboxer.state_dir = dir_.Sub("state");
    Restart();
  }

  // Builds a new controller over the same state dir and backend, as a daemon restart.
  void Restart() {
    controller_.reset();
    auto backend = std::make_unique<ForwardingBackend>(&fake_);
    auto c = SandboxController::Create(config_, std::move(backend));
    ASSERT_OK(c);
    controller_ = std::move(*c);
    auto report = controller_->Recover();
    ASSERT_OK(report);
    report_ = *report;
  }

  CreateSandboxRequest Request(const std::string& id) {
    CreateSandboxRequest r;
    r.id = id;
    r.netns_path = "/var/run/netns/cni-1";
    return r;
  }

  // Keeps the FakeBackend alive across controller restarts.
  class ForwardingBackend final : public SandboxBackend {
   public:
    explicit ForwardingBackend(FakeBackend* f) : f_(f) {}
    std::string_view Kind() const override { return f_->Kind(); }
    absl::Status Init(const BackendContext& c) override { return f_->Init(c); }
    absl::Status Create(SandboxRecord& r) override { return f_->Create(r); }
    absl::Status Start(SandboxRecord& r) override { return f_->Start(r); }
    absl::Status Stop(SandboxRecord& r, absl::Duration t) override { return f_->Stop(r, t); }
    absl::Status Cleanup(SandboxRecord& r) override { return f_->Cleanup(r); }
    absl::Status Recover(SandboxRecord& r) override { return f_->Recover(r); }
    absl::StatusOr<MetricSample> Metrics(const SandboxRecord& r) override {
      return f_->Metrics(r);
    }

   private:
    FakeBackend* f_;
  };

  TempDir dir_;
  Config config_;
  FakeBackend fake_;
  std::unique_ptr<SandboxController> controller_;
  RecoveryReport report_;
};

TEST_F(ControllerTest, FullLifecycle) {
  ASSERT_OK(controller_->CreateSandbox(Request("sb1")));
  auto started = controller_->StartSandbox("sb1");
  ASSERT_OK(started);
  EXPECT_EQ(started->pid, 4242u);
  EXPECT_EQ(started->address, "ttrpc+unix:///fake/sb1.sock");
  EXPECT_EQ(started->version, 3u);
  auto st = controller_->Status("sb1", true);
  ASSERT_OK(st);
  EXPECT_EQ(st->state, SandboxState::kReady);
  EXPECT_EQ(CriStateName(st->state), "SANDBOX_READY");

  std::promise<absl::StatusOr<SandboxExit>> waited;
  controller_->WaitSandbox("sb1", [&](absl::StatusOr<SandboxExit> e) { waited.set_value(e); });
  auto fut = waited.get_future();
  EXPECT_EQ(fut.wait_for(std::chrono::milliseconds(20)), std::future_status::timeout);
  ASSERT_OK(controller_->StopSandbox("sb1", absl::Seconds(1)));
  ASSERT_EQ(fut.wait_for(std::chrono::seconds(1)), std::future_status::ready);
  ASSERT_OK(fut.get());
  EXPECT_FALSE(fake_.IsRunning("sb1"));
  ASSERT_OK(controller_->StopSandbox("sb1", absl::Seconds(1)));  // idempotent
  ASSERT_OK(controller_->ShutdownSandbox("sb1"));
  EXPECT_FALSE(fake_.HasResources("sb1"));
  EXPECT_THAT(controller_->Status("sb1", false), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("state/records/sb1.json")));
}

TEST_F(ControllerTest, BadRequestsGetClearErrors) {
  EXPECT_THAT(controller_->CreateSandbox(Request("../x")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sandbox id")));
  ASSERT_OK(controller_->CreateSandbox(Request("dup")));
  EXPECT_THAT(controller_->CreateSandbox(Request("dup")),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("dup")));
  ASSERT_OK(controller_->StartSandbox("dup"));
  EXPECT_THAT(controller_->StartSandbox("dup"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already started")));
  EXPECT_THAT(controller_->StartSandbox("nope"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(controller_->StopSandbox("nope", absl::Seconds(1)),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(controller_->ShutdownSandbox("nope"), StatusIs(absl::StatusCode::kNotFound));
  absl::Status wait_status;
  controller_->WaitSandbox("nope", [&](absl::StatusOr<SandboxExit> e) { wait_status = e.status(); });
  EXPECT_THAT(wait_status, StatusIs(absl::StatusCode::kNotFound));
  // Platform answers without a sandbox (health check) but checks a given id.
  EXPECT_OK(controller_->Platform(""));
  EXPECT_THAT(controller_->Platform("a/b"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ControllerTest, FailedCreateLeavesNothing) {
  fake_.FailNext("create", absl::InternalError("disk on fire"));
  EXPECT_THAT(controller_->CreateSandbox(Request("sb")),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("create sandbox sb: disk on fire")));
  EXPECT_FALSE(fake_.HasResources("sb"));
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("state/records/sb.json")));
  // The id is free again.
  ASSERT_OK(controller_->CreateSandbox(Request("sb")));
}

TEST_F(ControllerTest, FailedStartStopsAndAnswersWait) {
  ASSERT_OK(controller_->CreateSandbox(Request("sb")));
  fake_.FailNext("start", absl::DeadlineExceededError("agent never answered"));
  EXPECT_THAT(controller_->StartSandbox("sb"), StatusIs(absl::StatusCode::kDeadlineExceeded));
  absl::StatusOr<SandboxExit> exit = absl::UnknownError("unset");
  controller_->WaitSandbox("sb", [&](absl::StatusOr<SandboxExit> e) { exit = e; });
  ASSERT_OK(exit);
  EXPECT_EQ(exit->exit_status, 137u);
  ASSERT_OK(controller_->ShutdownSandbox("sb"));
  EXPECT_FALSE(fake_.HasResources("sb"));
}

TEST_F(ControllerTest, ExitReportedByBackendWakesWaiters) {
  ASSERT_OK(controller_->CreateSandbox(Request("sb")));
  ASSERT_OK(controller_->StartSandbox("sb"));
  std::promise<absl::StatusOr<SandboxExit>> waited;
  controller_->WaitSandbox("sb", [&](absl::StatusOr<SandboxExit> e) { waited.set_value(e); });
  std::thread([&] { fake_.Exit("sb", 3); }).join();
  auto e = waited.get_future().get();
  ASSERT_OK(e);
  EXPECT_EQ(e->exit_status, 3u);
  EXPECT_EQ(controller_->Status("sb", false)->state, SandboxState::kStopped);
}

TEST_F(ControllerTest, ShutdownAnswersParkedWait) {
  ASSERT_OK(controller_->CreateSandbox(Request("sb")));
  ASSERT_OK(controller_->StartSandbox("sb"));
  bool answered = false;
  controller_->WaitSandbox("sb", [&](absl::StatusOr<SandboxExit> e) { answered = e.ok(); });
  ASSERT_OK(controller_->ShutdownSandbox("sb"));
  EXPECT_TRUE(answered);
}

TEST_F(ControllerTest, RecoveryAfterRestart) {
  ASSERT_OK(controller_->CreateSandbox(Request("running")));
  ASSERT_OK(controller_->StartSandbox("running"));
  ASSERT_OK(controller_->CreateSandbox(Request("died")));
  ASSERT_OK(controller_->StartSandbox("died"));
  ASSERT_OK(controller_->CreateSandbox(Request("created")));
  fake_.Vanish("died");
  Restart();
  EXPECT_EQ(report_.recovered_running, 1);
  EXPECT_EQ(report_.recovered_stopped, 2);
  EXPECT_EQ(controller_->Status("running", false)->state, SandboxState::kReady);
  EXPECT_EQ(controller_->Status("running", false)->address, "ttrpc+unix:///fake/running.sock");
  EXPECT_EQ(controller_->Status("died", false)->state, SandboxState::kStopped);
  EXPECT_EQ(controller_->Status("created", false)->state, SandboxState::kCreated);
  // The recovered sandbox is fully manageable.
  ASSERT_OK(controller_->StopSandbox("running", absl::Seconds(1)));
  ASSERT_OK(controller_->ShutdownSandbox("running"));
  ASSERT_OK(controller_->ShutdownSandbox("died"));
}

TEST_F(ControllerTest, RecoveryCleansHalfCreatedAndOrphans) {
  SandboxRecord half;
  half.id = "half";
  half.state = SandboxState::kCreating;
  ASSERT_OK(WriteFileAtomically(dir_.Sub("state/records/half.json"), half.ToJson().dump()));
  ASSERT_EQ(::mkdir(dir_.Sub("state/sandboxes/orphan").c_str(), 0700), 0);
  ASSERT_OK(WriteFileAtomically(dir_.Sub("state/records/junk.json"), "{not json"));
  Restart();
  EXPECT_EQ(report_.cleaned_up, 2);
  EXPECT_EQ(report_.quarantined, 1);
  EXPECT_THAT(controller_->Status("half", false), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_GE(fake_.calls("cleanup"), 2);
}

TEST_F(ControllerTest, SecondControllerOnSameStateDirIsRefused) {
  EXPECT_THAT(SandboxController::Create(config_, std::make_unique<FakeBackend>()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("in use")));
}

TEST_F(ControllerTest, ConcurrentSandboxesDoNotInterfere) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        std::string id = "p" + std::to_string(t) + "-" + std::to_string(i);
        if (controller_->CreateSandbox(Request(id)).ok() &&
            controller_->StartSandbox(id).ok() &&
            controller_->StopSandbox(id, absl::Seconds(1)).ok() &&
            controller_->ShutdownSandbox(id).ok()) {
          ++ok;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 200);
  EXPECT_TRUE(controller_->ListIds().empty());
}

}  // namespace
}  // namespace kuasar
