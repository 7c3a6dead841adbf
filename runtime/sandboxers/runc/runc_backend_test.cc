// The runc sandboxer end to end below containerd: real holders, real crun, real FIFOs,
// driven through the SandboxController and the pod's TaskService as containerd would.
#include "runtime/sandboxers/runc/runc_backend.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/str_format.h"
#include "containerd/events/task.pb.h"
#include "runtime/base/process_identity.h"
#include "runtime/base/socket_path.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/core/sandbox_controller.h"
#include "runtime/oci/testing/test_bundle.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;
namespace task = containerd::task::v3;

class RecordingPublisher : public EventPublisher {
 public:
  struct Event {
    std::string ns, topic, container_id;
    uint32_t exit_status = 0;
  };
  void Publish(std::string_view ns, std::string_view topic,
               const google::protobuf::Message& event) override {
    Event e{std::string(ns), std::string(topic), "", 0};
    if (auto* x = dynamic_cast<const containerd::events::TaskExit*>(&event)) {
      e.container_id = x->container_id();
      e.exit_status = x->exit_status();
    }
    std::lock_guard<std::mutex> l(mu_);
    events_.push_back(e);
  }
  int Count(std::string_view topic) {
    std::lock_guard<std::mutex> l(mu_);
    int n = 0;
    for (auto& e : events_) n += e.topic == topic;
    return n;
  }
  std::vector<Event> events() {
    std::lock_guard<std::mutex> l(mu_);
    return events_;
  }

 private:
  std::mutex mu_;
  std::vector<Event> events_;
};

class CapturingEndpoints : public TaskEndpoints {
 public:
  absl::Status Serve(const std::string& path, std::shared_ptr<TaskService> svc) override {
    std::lock_guard<std::mutex> l(mu_);
    services_[path] = std::move(svc);
    return absl::OkStatus();
  }
  absl::Status Register(const std::string& key, std::shared_ptr<TaskService> svc,
                        std::shared_ptr<ParkedCallStore>) override {
    return Serve(key, std::move(svc));
  }
  absl::Status Adopt(const std::string&, UniqueFd, const std::string&) override {
    return absl::OkStatus();
  }
  void Stop(const std::string& path) override {
    std::lock_guard<std::mutex> l(mu_);
    services_.erase(path);
  }
  std::shared_ptr<TaskService> Get(const std::string& path) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = services_.find(path);
    return it == services_.end() ? nullptr : it->second;
  }
  size_t size() {
    std::lock_guard<std::mutex> l(mu_);
    return services_.size();
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<TaskService>> services_;
};

std::string ReadAll(int fd, absl::Duration timeout) {
  std::string out;
  absl::Time deadline = absl::Now() + timeout;
  char buf[4096];
  while (absl::Now() < deadline) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0 && !out.empty()) break;
    ::usleep(10000);
  }
  return out;
}

class RuncBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (::access("/usr/bin/crun", X_OK) != 0) GTEST_SKIP() << "needs crun (apt install crun)";
    config_.sandboxer.state_dir = dir_.Sub("s");
    auto parsed = ParseConfig(absl::StrFormat("[runc]\nholder = \"%s\"\n", KUASAR_HOLDER_PATH));
    ASSERT_OK(parsed);
    config_.root = parsed->root;
    config_.source = "test";
    Restart();
  }

  void TearDown() override {
    if (controller_) {
      for (const std::string& id : controller_->ListIds()) (void)controller_->ShutdownSandbox(id);
    }
    controller_.reset();
  }

  void Restart() {
    controller_.reset();
    auto c = SandboxController::Create(config_, std::make_unique<RuncBackend>(), &events_,
                                       &endpoints_);
    ASSERT_OK(c);
    controller_ = std::move(*c);
    auto r = controller_->Recover();
    ASSERT_OK(r);
    report_ = *r;
  }

  std::string SandboxDir(const std::string& id) { return config_.sandboxer.state_dir + "/sandboxes/" + id; }
  std::string TaskSocket(const std::string& id) {
    return SocketDirFor(config_.sandboxer.state_dir, id) + "/task.sock";
  }

  std::shared_ptr<TaskService> StartPod(const std::string& id) {
    CreateSandboxRequest req;
    req.id = id;
    EXPECT_OK(controller_->CreateSandbox(req));
    auto started = controller_->StartSandbox(id);
    EXPECT_OK(started);
    if (!started.ok()) return nullptr;
    EXPECT_EQ(started->address, "ttrpc+unix://" + TaskSocket(id));
    sandbox_pid_ = static_cast<pid_t>(started->pid);
    return endpoints_.Get(TaskSocket(id));
  }

  // A container whose stdout we read from a FIFO.
  struct Ctr {
    std::string id, bundle, stdout_path;
    int stdout_fd = -1;
  };
  Ctr CreateContainer(TaskService& svc, const std::string& id, std::vector<std::string> args,
                      absl::Status* status = nullptr) {
    Ctr c{id, dir_.Sub("b-" + id), dir_.Sub(id + ".out")};
    testing::BundleOptions bo;
    bo.id = id;
    bo.args = std::move(args);
    bo.sandbox_pid = sandbox_pid_;
    auto mounts = testing::WriteBundle(c.bundle, bo);
    EXPECT_OK(mounts);
    ::mkfifo(c.stdout_path.c_str(), 0600);
    c.stdout_fd = ::open(c.stdout_path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    task::CreateTaskRequest req;
    req.set_id(id);
    req.set_bundle(c.bundle);
    for (const MountSpec& m : *mounts) {
      auto* pm = req.add_rootfs();
      pm->set_type(m.type);
      pm->set_source(m.source);
      for (const auto& o : m.options) pm->add_options(o);
    }
    req.set_stdout(c.stdout_path);
    auto resp = svc.Create("k8s.io", req);
    if (status) *status = resp.status();
    else EXPECT_OK(resp);
    return c;
  }

  absl::StatusOr<task::WaitResponse> WaitFor(TaskService& svc, const std::string& id,
                                             const std::string& exec_id = "") {
    std::promise<absl::StatusOr<task::WaitResponse>> p;
    task::WaitRequest req;
    req.set_id(id);
    req.set_exec_id(exec_id);
    svc.Wait(req, [&](absl::StatusOr<task::WaitResponse> r) { p.set_value(r); });
    auto f = p.get_future();
    if (f.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
      return absl::DeadlineExceededError("wait timed out");
    }
    return f.get();
  }

  absl::Status StartTask(TaskService& svc, const std::string& id, const std::string& exec_id = "") {
    task::StartRequest req;
    req.set_id(id);
    req.set_exec_id(exec_id);
    return svc.Start(req).status();
  }

  TempDir dir_{"kr"};
  Config config_;
  RecordingPublisher events_;
  CapturingEndpoints endpoints_;
  std::unique_ptr<SandboxController> controller_;
  RecoveryReport report_;
  pid_t sandbox_pid_ = 0;
};

TEST_F(RuncBackendTest, ContainerRunsPrintsAndExits) {
  auto svc = StartPod("pod1");
  ASSERT_TRUE(svc);
  Ctr c = CreateContainer(*svc, "c1", {"/testinit", "print", "hello", "from", "kuasar"});
  ASSERT_OK(StartTask(*svc, "c1"));
  auto exit = WaitFor(*svc, "c1");
  ASSERT_OK(exit);
  EXPECT_EQ(exit->exit_status(), 0u);
  EXPECT_EQ(ReadAll(c.stdout_fd, absl::Seconds(5)), "hello from kuasar\n");
  task::StateRequest sr;
  sr.set_id("c1");
  EXPECT_EQ(svc->State(sr)->status(), containerd::v1::types::STOPPED);
  task::DeleteRequest dr;
  dr.set_id("c1");
  ASSERT_OK(svc->Delete(dr));
  EXPECT_EQ(events_.Count(kTopicTaskCreate), 1);
  EXPECT_EQ(events_.Count(kTopicTaskStart), 1);
  EXPECT_EQ(events_.Count(kTopicTaskExit), 1);
  EXPECT_EQ(events_.Count(kTopicTaskDelete), 1);
  // The rootfs overlay is gone.
  std::ifstream mounts("/proc/self/mountinfo");
  std::string all((std::istreambuf_iterator<char>(mounts)), {});
  EXPECT_EQ(all.find(c.bundle + "/rootfs"), std::string::npos);
  ::close(c.stdout_fd);
}

TEST_F(RuncBackendTest, ExitCodeExecAndKill) {
  auto svc = StartPod("pod2");
  ASSERT_TRUE(svc);
  Ctr c = CreateContainer(*svc, "c2", {"/testinit", "sleep", "inf"});
  ASSERT_OK(StartTask(*svc, "c2"));
  // exec a process that exits 42 and prints
  std::string out = dir_.Sub("exec.out");
  ::mkfifo(out.c_str(), 0600);
  int out_fd = ::open(out.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  task::ExecProcessRequest er;
  er.set_id("c2");
  er.set_exec_id("e1");
  er.set_stdout(out);
  er.mutable_spec()->set_value(testing::ProcessJson({"/bin/sh", "-c", "echo in-pod; exit 42"}, false));
  ASSERT_OK(svc->Exec(er));
  ASSERT_OK(StartTask(*svc, "c2", "e1"));
  auto eexit = WaitFor(*svc, "c2", "e1");
  ASSERT_OK(eexit);
  EXPECT_EQ(eexit->exit_status(), 42u);
  EXPECT_EQ(ReadAll(out_fd, absl::Seconds(5)), "in-pod\n");
  task::DeleteRequest edr;
  edr.set_id("c2");
  edr.set_exec_id("e1");
  ASSERT_OK(svc->Delete(edr));
  // Kill the init: SIGKILL -> 137.
  task::KillRequest kr;
  kr.set_id("c2");
  kr.set_signal(SIGKILL);
  ASSERT_OK(svc->Kill(kr));
  auto exit = WaitFor(*svc, "c2");
  ASSERT_OK(exit);
  EXPECT_EQ(exit->exit_status(), 137u);
  // Signalling a finished process is NOT_FOUND, as containerd expects.
  EXPECT_THAT(svc->Kill(kr), StatusIs(absl::StatusCode::kNotFound, HasSubstr("finished")));
  ::close(out_fd);
  ::close(c.stdout_fd);
}

TEST_F(RuncBackendTest, BadRequestsAreClearErrors) {
  auto svc = StartPod("pod3");
  ASSERT_TRUE(svc);
  task::CreateTaskRequest req;
  req.set_id("bad");
  req.set_bundle(dir_.Sub("missing-bundle"));
  EXPECT_THAT(svc->Create("k8s.io", req), StatusIs(absl::StatusCode::kNotFound));
  req.set_bundle("relative/bundle");
  EXPECT_THAT(svc->Create("k8s.io", req), StatusIs(absl::StatusCode::kInvalidArgument));
  std::string b = dir_.Sub("badspec");
  ::mkdir(b.c_str(), 0700);
  std::ofstream(b + "/config.json") << "{\"ociVersion\": 1}";
  req.set_bundle(b);
  EXPECT_THAT(svc->Create("k8s.io", req),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ociVersion")));
  req.set_id("../escape");
  EXPECT_THAT(svc->Create("k8s.io", req), StatusIs(absl::StatusCode::kInvalidArgument));
  task::StartRequest sr;
  sr.set_id("nope");
  EXPECT_THAT(svc->Start(sr), StatusIs(absl::StatusCode::kNotFound));
  // The failed creates left nothing behind and the pod still works.
  Ctr c = CreateContainer(*svc, "ok", {"/testinit", "exit", "3"});
  ASSERT_OK(StartTask(*svc, "ok"));
  EXPECT_EQ(WaitFor(*svc, "ok")->exit_status(), 3u);
  EXPECT_THAT(svc->Start(sr), StatusIs(absl::StatusCode::kNotFound));
  ::close(c.stdout_fd);
}

TEST_F(RuncBackendTest, StopKillsContainersAndShutdownLeavesNothing) {
  auto svc = StartPod("pod4");
  ASSERT_TRUE(svc);
  Ctr c = CreateContainer(*svc, "c4", {"/testinit", "ignore-term"});
  ASSERT_OK(StartTask(*svc, "c4"));
  ProcessIdentity holder = {sandbox_pid_, IdentifyProcess(sandbox_pid_)->start_time};
  ASSERT_OK(controller_->StopSandbox("pod4", absl::Seconds(2)));
  auto exit = WaitFor(*svc, "c4");
  ASSERT_OK(exit);
  EXPECT_EQ(exit->exit_status(), 137u);
  EXPECT_FALSE(IsSameProcessAlive(holder));
  ASSERT_OK(controller_->ShutdownSandbox("pod4"));
  EXPECT_FALSE(std::filesystem::exists(SandboxDir("pod4")));
  EXPECT_FALSE(std::filesystem::exists(SocketDirFor(config_.sandboxer.state_dir, "pod4")));
  EXPECT_EQ(endpoints_.size(), 0u);
  EXPECT_FALSE(std::filesystem::exists("/sys/fs/cgroup/memory/kuasar/kuasar-pod4"));
  ::close(c.stdout_fd);
}

TEST_F(RuncBackendTest, RecoversAfterSandboxerCrash) {
  auto svc = StartPod("pod5");
  ASSERT_TRUE(svc);
  Ctr keep = CreateContainer(*svc, "keep", {"/testinit", "sleep", "inf"});
  ASSERT_OK(StartTask(*svc, "keep"));
  Ctr dies = CreateContainer(*svc, "dies", {"/testinit", "sleep", "inf"});
  ASSERT_OK(StartTask(*svc, "dies"));
  task::StateRequest sr;
  sr.set_id("dies");
  pid_t dies_pid = static_cast<pid_t>(svc->State(sr)->pid());
  sr.set_id("keep");
  pid_t keep_pid = static_cast<pid_t>(svc->State(sr)->pid());
  svc.reset();
  // The "crash": the controller and backend go away; holders and containers stay.
  controller_.reset();
  ::kill(dies_pid, SIGKILL);  // exits while the sandboxer is down
  ::usleep(100000);
  Restart();
  EXPECT_EQ(report_.recovered_running, 1);
  svc = endpoints_.Get(TaskSocket("pod5"));
  ASSERT_TRUE(svc);
  auto dexit = WaitFor(*svc, "dies");
  ASSERT_OK(dexit);
  EXPECT_EQ(dexit->exit_status(), 137u);  // from the holder's journal
  // The surviving container is still managed: kill it and see the exit.
  ::kill(keep_pid, SIGTERM);
  auto kexit = WaitFor(*svc, "keep");
  ASSERT_OK(kexit);
  EXPECT_EQ(kexit->exit_status(), 128u + SIGTERM);
  ::close(keep.stdout_fd);
  ::close(dies.stdout_fd);
}

TEST_F(RuncBackendTest, KilledHolderEndsThePod) {
  auto svc = StartPod("pod6");
  ASSERT_TRUE(svc);
  Ctr c = CreateContainer(*svc, "c6", {"/testinit", "sleep", "inf"});
  ASSERT_OK(StartTask(*svc, "c6"));
  std::promise<absl::StatusOr<SandboxExit>> sandbox_exit;
  controller_->WaitSandbox("pod6", [&](absl::StatusOr<SandboxExit> e) { sandbox_exit.set_value(e); });
  ::kill(sandbox_pid_, SIGKILL);
  auto f = sandbox_exit.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(f.get()->exit_status, 137u);
  auto exit = WaitFor(*svc, "c6");
  ASSERT_OK(exit);
  EXPECT_EQ(exit->exit_status(), 137u);
  ::close(c.stdout_fd);
}

}  // namespace
}  // namespace kuasar
