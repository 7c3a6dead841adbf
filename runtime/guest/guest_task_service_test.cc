// GuestTaskService over a recording TaskService: kuasar-stream:// stdio is mapped to the
// registry's FIFOs and back, and released with its process.
#include "runtime/guest/guest_task_service.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <thread>

#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"

namespace kuasar::guest {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class RecordingTasks final : public TaskService {
 public:
  absl::StatusOr<task::CreateTaskResponse> Create(std::string_view,
                                                  const task::CreateTaskRequest& r) override {
    created = r;
    if (!create_error.ok()) return create_error;
    return task::CreateTaskResponse();
  }
  absl::StatusOr<task::StartResponse> Start(const task::StartRequest&) override {
    return task::StartResponse();
  }
  absl::StatusOr<task::DeleteResponse> Delete(const task::DeleteRequest&) override {
    return task::DeleteResponse();
  }
  absl::StatusOr<task::StateResponse> State(const task::StateRequest& r) override {
    task::StateResponse s;
    s.set_id(r.id());
    s.set_stdout(r.exec_id().empty() ? created.stdout() : exec.stdout());
    return s;
  }
  absl::StatusOr<task::PidsResponse> Pids(const task::PidsRequest&) override {
    return absl::UnimplementedError("fake");
  }
  absl::Status Pause(const task::PauseRequest&) override { return absl::OkStatus(); }
  absl::Status Resume(const task::ResumeRequest&) override { return absl::OkStatus(); }
  absl::Status Kill(const task::KillRequest&) override { return absl::OkStatus(); }
  absl::Status Exec(const task::ExecProcessRequest& r) override {
    exec = r;
    return absl::OkStatus();
  }
  absl::Status ResizePty(const task::ResizePtyRequest&) override { return absl::OkStatus(); }
  absl::Status CloseIO(const task::CloseIORequest& r) override {
    closed_stdin.push_back(r.id() + "/" + r.exec_id());
    return absl::OkStatus();
  }
  absl::Status Update(const task::UpdateTaskRequest&) override { return absl::OkStatus(); }
  void Wait(const task::WaitRequest&, WaitCallback done) override { done(task::WaitResponse()); }
  absl::StatusOr<task::StatsResponse> Stats(const task::StatsRequest&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<task::ConnectResponse> Connect(const task::ConnectRequest&) override {
    return absl::UnimplementedError("fake");
  }
  absl::Status Shutdown(const task::ShutdownRequest&) override { return absl::OkStatus(); }

  task::CreateTaskRequest created;
  task::ExecProcessRequest exec;
  absl::Status create_error;
  std::vector<std::string> closed_stdin;
};

class GuestTaskServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StreamRegistryOptions o;
    o.dir = dir_.Sub("streams");
    o.unknown_token_wait = absl::ZeroDuration();
    registry_ = *StreamRegistry::Create(io_, o);
    svc_ = std::make_unique<GuestTaskService>(inner_, registry_.get());
  }
  void TearDown() override {
    svc_.reset();
    registry_.reset();
    work_.reset();
    io_.stop();
    io_thread_.join();
  }
  TempDir dir_{"kuasar-gts"};
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      boost::asio::make_work_guard(io_)};
  std::thread io_thread_{[this] { io_.run(); }};
  std::shared_ptr<RecordingTasks> inner_ = std::make_shared<RecordingTasks>();
  std::unique_ptr<StreamRegistry> registry_;
  std::unique_ptr<GuestTaskService> svc_;
};

TEST_F(GuestTaskServiceTest, PlainStdioPassesThrough) {
  task::CreateTaskRequest req;
  req.set_id("c1");
  req.set_stdout("/run/containerd/fifo/c1-stdout");
  ASSERT_OK(svc_->Create("k8s.io", req));
  EXPECT_EQ(inner_->created.stdout(), "/run/containerd/fifo/c1-stdout");
  EXPECT_EQ(svc_->stream_process_count(), 0u);
}

TEST_F(GuestTaskServiceTest, StreamsAreMappedAndReleased) {
  task::CreateTaskRequest req;
  req.set_id("c1");
  req.set_stdin("kuasar-stream://c1-in");
  req.set_stdout("kuasar-stream://c1-out");
  req.set_stderr("kuasar-stream://c1-out");  // both outputs in one stream
  ASSERT_OK(svc_->Create("k8s.io", req));
  EXPECT_THAT(inner_->created.stdin(), StartsWith(dir_.Sub("streams/")));
  EXPECT_EQ(inner_->created.stdout(), inner_->created.stderr());
  EXPECT_EQ(registry_->size(), 2u);
  task::StateRequest sreq;
  sreq.set_id("c1");
  auto state = svc_->State(sreq);
  ASSERT_OK(state);
  EXPECT_EQ(state->stdout(), "kuasar-stream://c1-out");
  // The writer's clean end closes the container's stdin through the inner service.
  ASSERT_OK(registry_->Write(
      "c1-in", "data", [](std::string*) { return false; }, [] { return false; }));
  EXPECT_EQ(inner_->closed_stdin, std::vector<std::string>{"c1/"});

  task::ExecProcessRequest ereq;
  ereq.set_id("c1");
  ereq.set_exec_id("e1");
  ereq.set_stdout("kuasar-stream://e1-out");
  ASSERT_OK(svc_->Exec(ereq));
  EXPECT_EQ(registry_->size(), 3u);
  task::DeleteRequest dreq;
  dreq.set_id("c1");  // deleting the container releases its execs' streams too
  ASSERT_OK(svc_->Delete(dreq));
  EXPECT_EQ(registry_->size(), 0u);
  EXPECT_EQ(svc_->stream_process_count(), 0u);
}

TEST_F(GuestTaskServiceTest, FailedCreateReleasesTokensAndBadTokensAreRefused) {
  task::CreateTaskRequest req;
  req.set_id("c2");
  req.set_stdout("kuasar-stream://c2-out");
  inner_->create_error = absl::InternalError("runc create failed");
  EXPECT_THAT(svc_->Create("k8s.io", req), StatusIs(absl::StatusCode::kInternal));
  EXPECT_EQ(registry_->size(), 0u);
  inner_->create_error = absl::OkStatus();
  req.set_stdout("kuasar-stream://bad/token");
  EXPECT_THAT(svc_->Create("k8s.io", req), StatusIs(absl::StatusCode::kInvalidArgument));
  req.set_stdin("kuasar-stream://same");
  req.set_stdout("kuasar-stream://same");
  EXPECT_THAT(svc_->Create("k8s.io", req),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("both stdin")));
  // A token another process holds.
  req.set_stdin("");
  req.set_stdout("kuasar-stream://taken");
  ASSERT_OK(svc_->Create("k8s.io", req));
  req.set_id("c3");
  EXPECT_THAT(svc_->Create("k8s.io", req), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(registry_->size(), 1u);
}

}  // namespace
}  // namespace kuasar::guest
