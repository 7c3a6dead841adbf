// kuasar-wasm-run as a process on hand-made bundles: output, exit codes, files from the
// rootfs and bind mounts, the ready/start handshake, kill, the memory and CPU limits of the
// OCI spec, and joining a namespace and a cgroup (those two need root).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "runtime/base/child_process.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/sandboxers/wasm/runner_handshake.h"
#include "runtime/sandboxers/wasm/wasm_engine.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class WasmRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto engine = MakeWasmEngine({"wasmtime", ""});
    ASSERT_OK(engine);
    if (absl::Status st = (*engine)->Available(); !st.ok()) GTEST_SKIP() << st.message();
    std::string module = std::string(KUASAR_WASM_FIXTURES) + "/testinit.wasm";
    if (::access(module.c_str(), R_OK) != 0) GTEST_SKIP() << "testinit.wasm not built (wabt)";
    std::filesystem::create_directories(dir_.Sub("bundle/rootfs/etc"));
    std::filesystem::copy_file(module, dir_.Sub("bundle/rootfs/testinit.wasm"));
    std::ofstream(dir_.Sub("bundle/rootfs/etc/msg")) << "rootfs file\n";
    std::filesystem::create_directories(dir_.Sub("data"));
    std::ofstream(dir_.Sub("data/note")) << "bind-mounted file\n";
    spec_ = {
        {"ociVersion", "1.2.0"},
        {"process", {{"args", {"/testinit.wasm"}}, {"env", {"GREETING=from-spec"}}, {"cwd", "/"}}},
        {"root", {{"path", "rootfs"}}},
        {"mounts",
         {{{"destination", "/data"},
           {"type", "bind"},
           {"source", dir_.Sub("data")},
           {"options", {"rbind", "ro"}}}}},
        {"linux", {{"namespaces", nlohmann::json::array()}}}};
  }

  void WriteSpec(std::vector<std::string> args) {
    spec_["process"]["args"] = {"/testinit.wasm"};
    for (auto& a : args) spec_["process"]["args"].push_back(a);
    std::ofstream(dir_.Sub("bundle/config.json")) << spec_.dump();
  }

  // Spawns the runner with stdout/stderr in files; with `handshake`, through the FIFOs.
  ChildProcess Spawn(bool handshake) {
    std::vector<std::string> argv = {KUASAR_WASM_RUN_PATH, "--bundle", dir_.Sub("bundle")};
    if (handshake) {
      std::filesystem::create_directories(dir_.Sub("state"));
      auto fd = PrepareHandshake(dir_.Sub("state"));
      EXPECT_OK(fd);
      ready_ = std::move(*fd);
      argv.insert(argv.end(), {"--state-dir", dir_.Sub("state")});
    }
    UniqueFd out(::open(dir_.Sub("out").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    UniqueFd err(::open(dir_.Sub("err").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    SpawnOptions so;
    so.stdout_fd = out.get();
    so.stderr_fd = err.get();
    auto child = ChildProcess::Spawn(argv, so);
    EXPECT_OK(child);
    return std::move(*child);
  }

  absl::Status AwaitReady(ChildProcess& child) {
    pid_t pid = child.pid();
    return AwaitRunnerReady(ready_.get(), absl::Seconds(20),
                            [pid] { return ::kill(pid, 0) == 0 && !Zombie(pid); });
  }

  static bool Zombie(pid_t pid) {
    std::string stat = ReadFile(absl::StrFormat("/proc/%d/stat", pid));
    size_t p = stat.rfind(')');
    return p == std::string::npos || stat.substr(p + 2, 1) == "Z";
  }

  // Runs to the end without a handshake; returns the exit code.
  int RunToEnd(std::vector<std::string> args) {
    WriteSpec(std::move(args));
    ChildProcess child = Spawn(false);
    auto status = child.WaitFor(std::chrono::seconds(30));
    EXPECT_OK(status);
    return status.ok() ? ExitCodeFromWaitStatus(*status) : -1;
  }

  std::string out() { return ReadFile(dir_.Sub("out")); }
  std::string err() { return ReadFile(dir_.Sub("err")); }

  TempDir dir_{"kwr"};
  nlohmann::json spec_;
  UniqueFd ready_;
};

TEST_F(WasmRunnerTest, RunsTheModuleWithArgsEnvAndFiles) {
  EXPECT_EQ(RunToEnd({"hello", "x", "y"}), 0);
  EXPECT_EQ(out(), "hello from wasm\nargs: x y\nGREETING=from-spec\n");
  EXPECT_EQ(RunToEnd({"exit", "7"}), 7);
  EXPECT_EQ(RunToEnd({"cat", "/etc/msg"}), 0);
  EXPECT_EQ(out(), "rootfs file\n");
  EXPECT_EQ(RunToEnd({"cat", "/data/note"}), 0);
  EXPECT_EQ(out(), "bind-mounted file\n");
  // A relative path is resolved against process.cwd.
  spec_["process"]["cwd"] = "/etc";
  EXPECT_EQ(RunToEnd({"cat", "msg"}), 0);
  EXPECT_EQ(out(), "rootfs file\n");
}

TEST_F(WasmRunnerTest, HandshakeHoldsTheModuleUntilStart) {
  WriteSpec({"print", "started"});
  ChildProcess child = Spawn(true);
  ASSERT_OK(AwaitReady(child));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(out(), "");  // compiled and waiting
  ASSERT_OK(SignalRunnerStart(dir_.Sub("state")));
  auto status = child.WaitFor(std::chrono::seconds(10));
  ASSERT_OK(status);
  EXPECT_EQ(ExitCodeFromWaitStatus(*status), 0);
  EXPECT_EQ(out(), "started\n");
  // Nobody waits any more.
  EXPECT_THAT(SignalRunnerStart(dir_.Sub("state")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(WasmRunnerTest, ErrorsBeforeStartAreReportedThroughTheHandshake) {
  spec_["process"]["args"] = {"/missing.wasm"};
  std::ofstream(dir_.Sub("bundle/config.json")) << spec_.dump();
  ChildProcess child = Spawn(true);
  EXPECT_THAT(AwaitReady(child),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("/missing.wasm not found in the container's rootfs")));
  EXPECT_EQ(ExitCodeFromWaitStatus(*child.WaitFor(std::chrono::seconds(10))), 1);
  std::filesystem::copy_file(std::string(KUASAR_WASM_FIXTURES) + "/bad-import.wasm",
                             dir_.Sub("bundle/rootfs/bad.wasm"));
  spec_["process"]["args"] = {"/bad.wasm"};
  std::ofstream(dir_.Sub("bundle/config.json")) << spec_.dump();
  ChildProcess bad = Spawn(true);
  EXPECT_THAT(AwaitReady(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("kuasar_no_such_function")));
}

TEST_F(WasmRunnerTest, KillStopsARunningLoop) {
  WriteSpec({"loop"});
  ChildProcess child = Spawn(true);
  ASSERT_OK(AwaitReady(child));
  ASSERT_OK(SignalRunnerStart(dir_.Sub("state")));
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_OK(child.Signal(SIGKILL));
  auto status = child.WaitFor(std::chrono::seconds(10));
  ASSERT_OK(status);
  EXPECT_EQ(ExitCodeFromWaitStatus(*status), 137);
}

TEST_F(WasmRunnerTest, MemoryLimitFailsCleanly) {
  spec_["linux"]["resources"] = {{"memory", {{"limit", 8 << 20}}}};
  EXPECT_EQ(RunToEnd({"alloc"}), 134);  // a trap, not a crash
  EXPECT_THAT(err(), HasSubstr("alloc: memory.grow failed after 7 MiB"));
  EXPECT_THAT(err(), HasSubstr("kuasar-wasm-run: /testinit.wasm: trapped"));
  EXPECT_EQ(RunToEnd({"alloc", "6"}), 0);
  EXPECT_EQ(out(), "allocated 6 MiB\n");
}

TEST_F(WasmRunnerTest, CpuLimitsThrottleAndInterrupt) {
  // RLIMIT_CPU 1 s: the loop is stopped once it used 1 s of CPU...
  spec_["process"]["rlimits"] = {{{"type", "RLIMIT_CPU"}, {"soft", 1}, {"hard", 1}}};
  absl::Time start = absl::Now();
  EXPECT_EQ(RunToEnd({"loop"}), 152);
  absl::Duration alone = absl::Now() - start;
  EXPECT_THAT(err(), HasSubstr("CPU time limit of 1s used up"));
  // ... and under half a CPU that second of CPU takes about two seconds.
  spec_["linux"]["resources"] = {{"cpu", {{"quota", 50000}, {"period", 100000}}}};
  start = absl::Now();
  EXPECT_EQ(RunToEnd({"loop"}), 152);
  absl::Duration throttled = absl::Now() - start;
  std::printf("1 s of CPU: %s unthrottled, %s at a 50%% quota\n",
              absl::FormatDuration(alone).c_str(), absl::FormatDuration(throttled).c_str());
  EXPECT_GT(throttled, absl::Seconds(1.6));
}

TEST_F(WasmRunnerTest, JoinsNamespacesAndCgroup) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (setns, cgroups)";
  // A stand-in pod: a process in its own UTS namespace.
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t pod = ::fork();
  if (pod == 0) {
    ::close(pipefd[0]);
    if (::unshare(CLONE_NEWUTS) != 0) ::_exit(1);
    ::write(pipefd[1], "x", 1);
    ::pause();
    ::_exit(0);
  }
  ::close(pipefd[1]);
  char c;
  ASSERT_EQ(::read(pipefd[0], &c, 1), 1);
  ::close(pipefd[0]);
  std::string cgroup = absl::StrFormat("/kuasar-test/wasm-runner-%d", ::getpid());
  spec_["linux"]["namespaces"] = {
      {{"type", "uts"}, {"path", absl::StrFormat("/proc/%d/ns/uts", pod)}}};
  spec_["linux"]["cgroupsPath"] = cgroup;
  spec_["linux"]["resources"] = {{"memory", {{"limit", 16 << 20}}}};
  spec_["process"]["capabilities"] = {
      {"bounding", {"CAP_KILL"}}, {"effective", {"CAP_KILL"}}, {"permitted", {"CAP_KILL"}}};
  WriteSpec({"loop"});
  ChildProcess child = Spawn(true);
  absl::Status ready = AwaitReady(child);
  std::string mem = "/sys/fs/cgroup/memory" + cgroup;
  bool v1 = std::filesystem::exists("/sys/fs/cgroup/memory/cgroup.procs");
  if (ready.ok()) {
    EXPECT_EQ(std::filesystem::read_symlink(absl::StrFormat("/proc/%d/ns/uts", child.pid())),
              std::filesystem::read_symlink(absl::StrFormat("/proc/%d/ns/uts", pod)));
    // Only the spec's capabilities are left (CAP_KILL is bit 5).
    std::string status = ReadFile(absl::StrFormat("/proc/%d/status", child.pid()));
    EXPECT_THAT(status, HasSubstr("CapEff:\t0000000000000020"));
    EXPECT_THAT(status, HasSubstr("CapBnd:\t0000000000000020"));
    if (v1) {
      EXPECT_THAT(ReadFile(mem + "/cgroup.procs"), HasSubstr(std::to_string(child.pid())));
      // The module's 16 MiB plus the engine's 64 MiB allowance.
      EXPECT_EQ(ReadFile(mem + "/memory.limit_in_bytes"), std::to_string(80 << 20) + "\n");
    }
  }
  (void)child.Signal(SIGKILL);
  (void)child.WaitFor(std::chrono::seconds(10));
  ::kill(pod, SIGKILL);
  ::waitpid(pod, nullptr, 0);
  for (const char* ctl : {"memory", "cpu", "cpuacct", "pids"}) {
    ::rmdir(absl::StrFormat("/sys/fs/cgroup/%s%s", ctl, cgroup).c_str());
  }
  ::rmdir(("/sys/fs/cgroup/unified" + cgroup).c_str());
  ASSERT_OK(ready);
}

}  // namespace
}  // namespace kuasar
