// The WasmEngine conformance suite, run against every engine (Wasmtime; WasmEdge skips
// with its reason): the testinit.wasm fixture in-process, its stdio redirected to files.
#include "runtime/sandboxers/wasm/wasm_engine.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <time.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;
using Kind = WasmOutcome::Kind;

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

absl::Duration ThreadCpu() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return absl::DurationFromTimespec(ts);
}

// Points fds 1 and 2 at files for the life of the object.
class CapturedStdio {
 public:
  explicit CapturedStdio(const TempDir& dir)
      : out_path_(dir.Sub("stdout")), err_path_(dir.Sub("stderr")) {
    std::fflush(nullptr);
    saved_out_ = ::dup(1);
    saved_err_ = ::dup(2);
    int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::close(out);
    ::close(err);
  }
  ~CapturedStdio() { Restore(); }
  void Restore() {
    if (saved_out_ < 0) return;
    std::fflush(nullptr);
    ::dup2(saved_out_, 1);
    ::dup2(saved_err_, 2);
    ::close(saved_out_);
    ::close(saved_err_);
    saved_out_ = saved_err_ = -1;
  }
  std::string out() const { return ReadFile(out_path_); }
  std::string err() const { return ReadFile(err_path_); }

 private:
  std::string out_path_, err_path_;
  int saved_out_ = -1, saved_err_ = -1;
};

class WasmEngineTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto engine = MakeWasmEngine({GetParam(), ""});
    ASSERT_OK(engine);
    engine_ = std::move(*engine);
    if (absl::Status st = engine_->Available(); !st.ok()) GTEST_SKIP() << st.message();
    module_ = ReadFile(std::string(KUASAR_WASM_FIXTURES) + "/testinit.wasm");
    if (module_.empty()) GTEST_SKIP() << "testinit.wasm not built (apt install wabt)";
    std::filesystem::create_directories(dir_.Sub("root/etc"));
    std::ofstream(dir_.Sub("root/etc/msg")) << "from the rootfs\n";
  }

  WasmProgram Program(std::vector<std::string> args) {
    WasmProgram p;
    p.name = "/testinit.wasm";
    p.module = module_;
    p.args = {"/testinit.wasm"};
    p.args.insert(p.args.end(), args.begin(), args.end());
    p.preopens = {{dir_.Sub("root"), "/", false}};
    return p;
  }

  struct Result {
    WasmOutcome outcome;
    std::string out, err;
  };
  Result Run(WasmProgram program) {
    auto instance = engine_->Prepare(std::move(program));
    EXPECT_OK(instance);
    if (!instance.ok()) return {};
    CapturedStdio io(dir_);
    auto outcome = (*instance)->Run();
    io.Restore();
    EXPECT_OK(outcome);
    return {outcome.ok() ? *outcome : WasmOutcome{}, io.out(), io.err()};
  }

  TempDir dir_{"kwe"};
  std::unique_ptr<WasmEngine> engine_;
  std::string module_;
};

TEST_P(WasmEngineTest, PrintsHelloArgsAndEnv) {
  WasmProgram p = Program({"hello", "a", "b c"});
  p.env = {"PATH=/bin", "GREETING=hi there"};
  Result r = Run(std::move(p));
  EXPECT_EQ(r.outcome.kind, Kind::kExited);
  EXPECT_EQ(r.outcome.exit_code, 0);
  EXPECT_EQ(r.out, "hello from wasm\nargs: a b c\nGREETING=hi there\n");
}

TEST_P(WasmEngineTest, ProcExitCodeIsTheExitStatus) {
  Result r = Run(Program({"exit", "42"}));
  EXPECT_EQ(r.outcome.kind, Kind::kExited);
  EXPECT_EQ(r.outcome.exit_code, 42);
  EXPECT_EQ(ExitStatusFor(r.outcome), 42);
}

TEST_P(WasmEngineTest, ReadsFilesOnlyThroughPreopens) {
  Result r = Run(Program({"cat", "/etc/msg"}));
  EXPECT_EQ(r.outcome.exit_code, 0);
  EXPECT_EQ(r.out, "from the rootfs\n");
  // ".." cannot climb out of the preopened rootfs.
  std::ofstream(dir_.Sub("secret")) << "host file\n";
  r = Run(Program({"cat", "/../secret"}));
  EXPECT_EQ(r.outcome.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr("cat: cannot open /../secret"));
  // A read-only preopen refuses writes but still reads.
  WasmProgram ro = Program({"cat", "/etc/msg"});
  ro.preopens[0].read_only = true;
  EXPECT_EQ(Run(std::move(ro)).out, "from the rootfs\n");
}

TEST_P(WasmEngineTest, InterruptStopsARunningLoop) {
  auto instance = engine_->Prepare(Program({"loop"}));
  ASSERT_OK(instance);
  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(200));
    (*instance)->Interrupt();
  });
  absl::Time start = absl::Now();
  auto outcome = (*instance)->Run();
  stopper.join();
  ASSERT_OK(outcome);
  EXPECT_EQ(outcome->kind, Kind::kInterrupted);
  EXPECT_EQ(ExitStatusFor(*outcome), 130);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_P(WasmEngineTest, MemoryLimitFailsTheGrowAndTrapsCleanly) {
  WasmProgram p = Program({"alloc"});
  p.limits.memory_bytes = 8 << 20;
  Result r = Run(std::move(p));
  EXPECT_EQ(r.outcome.kind, Kind::kTrapped);
  EXPECT_EQ(ExitStatusFor(r.outcome), 134);
  EXPECT_THAT(r.outcome.message, HasSubstr("unreachable"));
  // 4 pages at start, 1 MiB per grow: the 8th MiB does not fit.
  EXPECT_THAT(r.err, HasSubstr("alloc: memory.grow failed after 7 MiB"));
  // Under the limit the same module is fine.
  p = Program({"alloc", "5"});
  p.limits.memory_bytes = 8 << 20;
  r = Run(std::move(p));
  EXPECT_EQ(r.outcome.kind, Kind::kExited);
  EXPECT_EQ(r.out, "allocated 5 MiB\n");
}

TEST_P(WasmEngineTest, CpuQuotaThrottlesTheModule) {
  // 25 ms of CPU per 100 ms: spinning for 1 s of wall time may use about 0.25 s of CPU.
  WasmProgram p = Program({"spin", "1000"});
  p.limits.cpu_quota_us = 25000;
  p.limits.cpu_period_us = 100000;
  auto instance = engine_->Prepare(std::move(p));
  ASSERT_OK(instance);
  absl::Duration cpu0 = ThreadCpu();
  CapturedStdio io(dir_);
  auto outcome = (*instance)->Run();
  io.Restore();
  absl::Duration cpu = ThreadCpu() - cpu0;
  ASSERT_OK(outcome);
  EXPECT_EQ(outcome->kind, Kind::kExited);
  EXPECT_EQ(io.out(), "spun\n");
  std::printf("spin 1000 ms under a 25%% quota used %s of CPU\n",
              absl::FormatDuration(cpu).c_str());
  EXPECT_GT(cpu, absl::Milliseconds(150));
  EXPECT_LT(cpu, absl::Milliseconds(450));
}

TEST_P(WasmEngineTest, SleepWaitsWithoutCpu) {
  auto instance = engine_->Prepare(Program({"sleep", "300"}));
  ASSERT_OK(instance);
  absl::Time start = absl::Now();
  absl::Duration cpu0 = ThreadCpu();
  auto outcome = (*instance)->Run();
  ASSERT_OK(outcome);
  EXPECT_EQ(outcome->kind, Kind::kExited);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(290));
  EXPECT_LT(ThreadCpu() - cpu0, absl::Milliseconds(100));
}

TEST_P(WasmEngineTest, CpuTimeLimitInterruptsTheModule) {
  WasmProgram p = Program({"loop"});
  p.limits.cpu_time_limit_ms = 300;
  absl::Time start = absl::Now();
  Result r = Run(std::move(p));
  EXPECT_EQ(r.outcome.kind, Kind::kCpuTimeExceeded);
  EXPECT_EQ(ExitStatusFor(r.outcome), 152);
  EXPECT_THAT(r.outcome.message, HasSubstr("CPU time limit"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST_P(WasmEngineTest, RefusesWhatIsNotAWasiCommand) {
  WasmProgram p = Program({});
  p.module = "#!/bin/sh\necho not wasm\n";
  EXPECT_THAT(engine_->Prepare(p),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a WebAssembly module")));
  p.module = std::string("\0asm\x0d\0\x01\0", 8);
  EXPECT_THAT(engine_->Prepare(p),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("component")));
  p.module = std::string("\0asm\x01\0\0\0", 8);  // a valid, empty module
  EXPECT_THAT(engine_->Prepare(p),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("_start")));
  p.module = module_.substr(0, module_.size() / 2);
  EXPECT_THAT(engine_->Prepare(p),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a valid")));
  p.module = ReadFile(std::string(KUASAR_WASM_FIXTURES) + "/bad-import.wasm");
  EXPECT_THAT(engine_->Prepare(p),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("kuasar_no_such_function")));
}

INSTANTIATE_TEST_SUITE_P(Engines, WasmEngineTest, ::testing::Values("wasmtime", "wasmedge"),
                         [](const auto& info) { return info.param; });

TEST(WasmEngines, UnavailableEnginesSayWhy) {
  auto missing = MakeWasmEngine({"wasmtime", "/nonexistent/libwasmtime.so"});
  ASSERT_OK(missing);
  EXPECT_THAT((*missing)->Available(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("Wasmtime C API not installed (run ci/install-wasm-deps)")));
  EXPECT_THAT((*missing)->Prepare({}), StatusIs(absl::StatusCode::kFailedPrecondition));
  auto edge = MakeWasmEngine({"wasmedge", ""});
  ASSERT_OK(edge);
  EXPECT_THAT((*edge)->Available(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("WasmEdge")));
  EXPECT_THAT(MakeWasmEngine({"v8", ""}), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kuasar
