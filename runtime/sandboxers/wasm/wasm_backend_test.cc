// The wasm sandboxer end to end below containerd: real holders, real kuasar-wasm-run
// processes running testinit.wasm from an overlay rootfs, real FIFOs, driven through the
// SandboxController and the pod's TaskService as containerd would.
#include "runtime/sandboxers/wasm/wasm_backend.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "containerd/events/task.pb.h"
#include "runtime/base/process_identity.h"
#include "runtime/base/socket_path.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/core/sandbox_controller.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;
namespace task = containerd::task::v3;

class CountingPublisher : public EventPublisher {
 public:
  void Publish(std::string_view, std::string_view topic,
               const google::protobuf::Message&) override {
    std::lock_guard<std::mutex> l(mu_);
    ++counts_[std::string(topic)];
  }
  int Count(std::string_view topic) {
    std::lock_guard<std::mutex> l(mu_);
    return counts_[std::string(topic)];
  }

 private:
  std::mutex mu_;
  std::map<std::string, int> counts_;
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

class WasmBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (holders, mounts, cgroups)";
    auto engine = MakeWasmEngine({"wasmtime", ""});
    ASSERT_OK(engine);
    if (absl::Status st = (*engine)->Available(); !st.ok()) GTEST_SKIP() << st.message();
    std::string module = std::string(KUASAR_WASM_FIXTURES) + "/testinit.wasm";
    if (::access(module.c_str(), R_OK) != 0) GTEST_SKIP() << "testinit.wasm not built (wabt)";
    // The image: what containerd's snapshotter would give as the overlay's lower layer.
    std::filesystem::create_directories(dir_.Sub("image/etc"));
    std::filesystem::copy_file(module, dir_.Sub("image/testinit.wasm"));
    std::ofstream(dir_.Sub("image/etc/msg")) << "from the image\n";
    config_.sandboxer.state_dir = dir_.Sub("s");
    auto parsed = ParseConfig(absl::StrFormat("[wasm]\nholder = \"%s\"\nrunner = \"%s\"\n",
                                              KUASAR_HOLDER_PATH, KUASAR_WASM_RUN_PATH));
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
    auto c =
        SandboxController::Create(config_, std::make_unique<WasmBackend>(), &events_, &endpoints_);
    ASSERT_OK(c);
    controller_ = std::move(*c);
    auto r = controller_->Recover();
    ASSERT_OK(r);
    report_ = *r;
  }

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
    sandbox_pid_ = static_cast<pid_t>(started->pid);
    return endpoints_.Get(TaskSocket(id));
  }

  struct Ctr {
    std::string id, bundle;
    int stdout_fd = -1;
    ~Ctr() {
      if (stdout_fd >= 0) ::close(stdout_fd);
    }
  };
  // A container as containerd's CRI would create it: a bundle whose config.json joins the
  // pod's namespaces, and the image as an overlay rootfs mount.
  std::unique_ptr<Ctr> Create(TaskService& svc, const std::string& id,
                              std::vector<std::string> args, absl::Status* status = nullptr,
                              nlohmann::json resources = nlohmann::json::object()) {
    auto c = std::make_unique<Ctr>();
    c->id = id;
    c->bundle = dir_.Sub("b-" + id);
    for (const char* d : {"", "/rootfs", "/upper", "/work"}) ::mkdir((c->bundle + d).c_str(), 0711);
    args.insert(args.begin(), module_);
    auto ns = [&](const char* type, const char* file) {
      return nlohmann::json{{"type", type},
                            {"path", absl::StrFormat("/proc/%d/ns/%s", sandbox_pid_, file)}};
    };
    nlohmann::json spec = {
        {"ociVersion", "1.2.0"},
        {"process",
         {{"args", args},
          {"env", {"GREETING=pod"}},
          {"cwd", "/"},
          {"user", {{"uid", 0}, {"gid", 0}}}}},
        {"root", {{"path", "rootfs"}}},
        {"mounts", nlohmann::json::array()},
        {"linux",
         {{"namespaces",
           {ns("network", "net"), ns("ipc", "ipc"), ns("uts", "uts"), {{"type", "mount"}}}},
          {"cgroupsPath", "/kuasar-test/" + id},
          {"resources", resources}}}};
    std::ofstream(c->bundle + "/config.json") << spec.dump();
    std::string out = dir_.Sub(id + ".out");
    ::mkfifo(out.c_str(), 0600);
    c->stdout_fd = ::open(out.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    task::CreateTaskRequest req;
    req.set_id(id);
    req.set_bundle(c->bundle);
    auto* m = req.add_rootfs();
    m->set_type("overlay");
    m->set_source("overlay");
    m->add_options("lowerdir=" + dir_.Sub("image"));
    m->add_options("upperdir=" + c->bundle + "/upper");
    m->add_options("workdir=" + c->bundle + "/work");
    req.set_stdout(out);
    auto resp = svc.Create("k8s.io", req);
    if (status)
      *status = resp.status();
    else
      EXPECT_OK(resp);
    return c;
  }

  absl::Status Start(TaskService& svc, const std::string& id) {
    task::StartRequest req;
    req.set_id(id);
    return svc.Start(req).status();
  }

  absl::StatusOr<task::WaitResponse> Wait(TaskService& svc, const std::string& id) {
    std::promise<absl::StatusOr<task::WaitResponse>> p;
    task::WaitRequest req;
    req.set_id(id);
    svc.Wait(req, [&](absl::StatusOr<task::WaitResponse> r) { p.set_value(r); });
    auto f = p.get_future();
    if (f.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
      return absl::DeadlineExceededError("wait timed out");
    }
    return f.get();
  }

  task::StateResponse State(TaskService& svc, const std::string& id) {
    task::StateRequest req;
    req.set_id(id);
    auto r = svc.State(req);
    EXPECT_OK(r);
    return r.ok() ? *r : task::StateResponse{};
  }

  TempDir dir_{"kw"};
  Config config_;
  CountingPublisher events_;
  CapturingEndpoints endpoints_;
  std::unique_ptr<SandboxController> controller_;
  RecoveryReport report_;
  pid_t sandbox_pid_ = 0;
  std::string module_ = "/testinit.wasm";  // process.args[0] of the next Create
};

TEST_F(WasmBackendTest, ModuleRunsPrintsAndExits) {
  auto svc = StartPod("wpod1");
  ASSERT_TRUE(svc);
  auto c = Create(*svc, "w1", {"hello", "from", "kuasar"});
  EXPECT_EQ(State(*svc, "w1").status(), containerd::v1::types::CREATED);
  ASSERT_OK(Start(*svc, "w1"));
  auto exit = Wait(*svc, "w1");
  ASSERT_OK(exit);
  EXPECT_EQ(exit->exit_status(), 0u);
  EXPECT_EQ(ReadAll(c->stdout_fd, absl::Seconds(5)),
            "hello from wasm\nargs: from kuasar\nGREETING=pod\n");
  task::DeleteRequest dr;
  dr.set_id("w1");
  ASSERT_OK(svc->Delete(dr));
  EXPECT_EQ(events_.Count(kTopicTaskCreate), 1);
  EXPECT_EQ(events_.Count(kTopicTaskStart), 1);
  EXPECT_EQ(events_.Count(kTopicTaskExit), 1);
  EXPECT_EQ(events_.Count(kTopicTaskDelete), 1);
  EXPECT_FALSE(std::filesystem::exists(config_.sandboxer.state_dir + "/wasm/w1"));
  EXPECT_FALSE(std::filesystem::exists("/sys/fs/cgroup/memory/kuasar-test/w1"));
}

TEST_F(WasmBackendTest, ExitCodesFilesKillAndPause) {
  auto svc = StartPod("wpod2");
  ASSERT_TRUE(svc);
  auto e = Create(*svc, "exit9", {"exit", "9"});
  ASSERT_OK(Start(*svc, "exit9"));
  EXPECT_EQ(Wait(*svc, "exit9")->exit_status(), 9u);
  auto cat = Create(*svc, "cat", {"cat", "/etc/msg"});
  ASSERT_OK(Start(*svc, "cat"));
  EXPECT_EQ(Wait(*svc, "cat")->exit_status(), 0u);
  EXPECT_EQ(ReadAll(cat->stdout_fd, absl::Seconds(5)), "from the image\n");

  auto loop = Create(*svc, "loop", {"loop"});
  ASSERT_OK(Start(*svc, "loop"));
  task::StateResponse st = State(*svc, "loop");
  EXPECT_EQ(st.status(), containerd::v1::types::RUNNING);
  task::PidsRequest pr;
  pr.set_id("loop");
  auto pids = svc->Pids(pr);
  ASSERT_OK(pids);
  ASSERT_EQ(pids->processes_size(), 1);
  EXPECT_EQ(pids->processes(0).pid(), st.pid());
  // The runner sits in the pod's network namespace and its own cgroup.
  EXPECT_EQ(std::filesystem::read_symlink(absl::StrFormat("/proc/%d/ns/net", st.pid())),
            std::filesystem::read_symlink(absl::StrFormat("/proc/%d/ns/net", sandbox_pid_)));
  task::StatsRequest sr;
  sr.set_id("loop");
  EXPECT_OK(svc->Stats(sr));
  task::PauseRequest pause;
  pause.set_id("loop");
  ASSERT_OK(svc->Pause(pause));
  EXPECT_EQ(State(*svc, "loop").status(), containerd::v1::types::PAUSED);
  task::ResumeRequest resume;
  resume.set_id("loop");
  ASSERT_OK(svc->Resume(resume));
  EXPECT_EQ(State(*svc, "loop").status(), containerd::v1::types::RUNNING);
  task::KillRequest kr;
  kr.set_id("loop");
  kr.set_signal(SIGKILL);
  ASSERT_OK(svc->Kill(kr));
  EXPECT_EQ(Wait(*svc, "loop")->exit_status(), 137u);
  EXPECT_THAT(svc->Kill(kr), StatusIs(absl::StatusCode::kNotFound, HasSubstr("finished")));
}

TEST_F(WasmBackendTest, LimitsFromTheSpec) {
  auto svc = StartPod("wpod3");
  ASSERT_TRUE(svc);
  auto mem = Create(*svc, "mem", {"alloc"}, nullptr, {{"memory", {{"limit", 8 << 20}}}});
  ASSERT_OK(Start(*svc, "mem"));
  EXPECT_EQ(Wait(*svc, "mem")->exit_status(), 134u);  // trapped cleanly, not OOM-killed
}

TEST_F(WasmBackendTest, UnsupportedAndBadRequestsAreClearErrors) {
  auto svc = StartPod("wpod4");
  ASSERT_TRUE(svc);
  absl::Status st;
  module_ = "/missing.wasm";
  auto missing = Create(*svc, "missing", {"hello"}, &st);
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kNotFound,
                           HasSubstr("/missing.wasm not found in the container's rootfs")));
  module_ = "/testinit.wasm";
  std::filesystem::remove(dir_.Sub("image/testinit.wasm"));
  std::ofstream(dir_.Sub("image/testinit.wasm")) << "not wasm";
  auto bad = Create(*svc, "bad", {"hello"}, &st);
  EXPECT_THAT(st,
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a WebAssembly module")));
  std::filesystem::remove(dir_.Sub("image/testinit.wasm"));
  std::filesystem::copy_file(std::string(KUASAR_WASM_FIXTURES) + "/testinit.wasm",
                             dir_.Sub("image/testinit.wasm"));

  auto loop = Create(*svc, "loop4", {"loop"});
  ASSERT_OK(Start(*svc, "loop4"));
  task::ExecProcessRequest er;
  er.set_id("loop4");
  er.set_exec_id("e1");
  er.mutable_spec()->set_value(R"({"args": ["/testinit.wasm", "hello"], "cwd": "/"})");
  ASSERT_OK(svc->Exec(er));
  task::StartRequest sr;
  sr.set_id("loop4");
  sr.set_exec_id("e1");
  EXPECT_THAT(svc->Start(sr), StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("exec")));
  task::UpdateTaskRequest ur;
  ur.set_id("loop4");
  EXPECT_THAT(svc->Update(ur), StatusIs(absl::StatusCode::kUnimplemented));
}

TEST_F(WasmBackendTest, StopKillsModulesAndShutdownLeavesNothing) {
  auto svc = StartPod("wpod5");
  ASSERT_TRUE(svc);
  auto c = Create(*svc, "w5", {"loop"});
  ASSERT_OK(Start(*svc, "w5"));
  ASSERT_OK(controller_->StopSandbox("wpod5", absl::Seconds(2)));
  EXPECT_EQ(Wait(*svc, "w5")->exit_status(), 137u);
  ASSERT_OK(controller_->ShutdownSandbox("wpod5"));
  EXPECT_FALSE(std::filesystem::exists(config_.sandboxer.state_dir + "/sandboxes/wpod5"));
  EXPECT_FALSE(std::filesystem::exists(config_.sandboxer.state_dir + "/wasm/w5"));
  EXPECT_FALSE(std::filesystem::exists("/sys/fs/cgroup/memory/kuasar-test/w5"));
  EXPECT_EQ(endpoints_.size(), 0u);
}

TEST_F(WasmBackendTest, RecoversAfterSandboxerCrash) {
  auto svc = StartPod("wpod6");
  ASSERT_TRUE(svc);
  auto keep = Create(*svc, "keep", {"loop"});
  ASSERT_OK(Start(*svc, "keep"));
  auto dies = Create(*svc, "dies", {"loop"});
  ASSERT_OK(Start(*svc, "dies"));
  auto waiting = Create(*svc, "waiting", {"print", "after restart"});
  pid_t dies_pid = static_cast<pid_t>(State(*svc, "dies").pid());
  svc.reset();
  controller_.reset();  // the "crash": holders and runners stay
  ::kill(dies_pid, SIGKILL);
  ::usleep(100000);
  Restart();
  EXPECT_EQ(report_.recovered_running, 1);
  svc = endpoints_.Get(TaskSocket("wpod6"));
  ASSERT_TRUE(svc);
  EXPECT_EQ(Wait(*svc, "dies")->exit_status(), 137u);  // from the holder's journal
  // A container created before the crash starts after it (the FIFOs are on disk).
  ASSERT_OK(Start(*svc, "waiting"));
  EXPECT_EQ(Wait(*svc, "waiting")->exit_status(), 0u);
  EXPECT_EQ(ReadAll(waiting->stdout_fd, absl::Seconds(5)), "after restart\n");
  task::KillRequest kr;
  kr.set_id("keep");
  kr.set_signal(SIGTERM);
  ASSERT_OK(svc->Kill(kr));
  EXPECT_EQ(Wait(*svc, "keep")->exit_status(), 143u);
}

}  // namespace
}  // namespace kuasar
