// Hot paths of the sandbox lifecycle below the protocols: one state-store write (the
// fsynced atomic replace every state change costs) and a whole Create/Start/Stop/Shutdown
// through the SandboxController with the in-memory backend, i.e. the sandboxer's own cost
// per pod without any runtime, VMM or agent.
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include "runtime/base/temp_dir.h"
#include "runtime/core/sandbox_controller.h"
#include "runtime/core/state_store.h"
#include "runtime/core/testing/fake_backend.h"

namespace kuasar {
namespace {

void BM_StateStoreWrite(benchmark::State& state) {
  TempDir dir("kb");
  auto store = StateStore::Open(dir.Sub("records"));
  SandboxRecord rec;
  rec.id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  rec.state = SandboxState::kReady;
  rec.annotations["io.kubernetes.cri.sandbox-name"] = "bench";
  rec.backend["containers"] = nlohmann::json::object();
  nlohmann::json doc = rec.ToJson();
  for (auto _ : state) {
    if (!store->Save(rec.id, doc).ok()) state.SkipWithError("save failed");
  }
}
BENCHMARK(BM_StateStoreWrite)->Unit(benchmark::kMicrosecond);

void BM_SandboxLifecycleNoopBackend(benchmark::State& state) {
  TempDir dir("kb");
  Config config;
  config.sandboxer.state_dir = dir.Sub("state");
  auto controller = SandboxController::Create(config, std::make_unique<FakeBackend>());
  if (!controller.ok()) return state.SkipWithError("controller");
  int i = 0;
  for (auto _ : state) {
    CreateSandboxRequest req;
    req.id = "pod-" + std::to_string(i++);
    bool ok = (*controller)->CreateSandbox(req).ok() && (*controller)->StartSandbox(req.id).ok() &&
              (*controller)->StopSandbox(req.id, absl::Seconds(1)).ok() &&
              (*controller)->ShutdownSandbox(req.id).ok();
    if (!ok) state.SkipWithError("lifecycle failed");
  }
}
BENCHMARK(BM_SandboxLifecycleNoopBackend)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace kuasar

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);  // one info line per lifecycle step otherwise
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
