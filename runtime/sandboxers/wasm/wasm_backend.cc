#include "runtime/sandboxers/wasm/wasm_backend.h"

#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/core/toml_section.h"

namespace kuasar {

absl::StatusOr<WasmConfig> ParseWasmConfig(const Config& config) {
  WasmConfig c;
  WasmContainerEngineOptions& e = c.engine;
  e.runner = BesideExecutable("kuasar-wasm-run");
  e.root = config.sandboxer.state_dir + "/wasm";
  c.pod.holder = BesideExecutable("kuasar-holder");
  TomlSection top(config.root.get(), "", config.source), s(nullptr, "", "");
  RETURN_IF_ERROR(top.Sub("wasm", &s));
  RETURN_IF_ERROR(s.Get("engine", &e.engine.kind));
  RETURN_IF_ERROR(s.Get("library", &e.engine.library));
  RETURN_IF_ERROR(s.Get("runner", &e.runner));
  RETURN_IF_ERROR(s.Get("runtime_root", &e.root));
  RETURN_IF_ERROR(s.Get("default_memory_limit", &e.default_memory_limit, 0, int64_t{1} << 40));
  int64_t millis = 0;
  RETURN_IF_ERROR(s.Get("default_cpu_millis", &millis, 0, 1024000));
  RETURN_IF_ERROR(s.Get("cpu_period_us", &e.cpu_period_us, 1000, 1000000));
  RETURN_IF_ERROR(s.Get("cgroup_memory_overhead", &e.cgroup_memory_overhead, 0, int64_t{1} << 36));
  int64_t ready_ms = 30000;
  RETURN_IF_ERROR(s.Get("ready_timeout_ms", &ready_ms, 100, 600000));
  RETURN_IF_ERROR(ParseHolderPodKeys(s, &c.pod));
  RETURN_IF_ERROR(s.CheckNoUnknownKeys());
  if (e.engine.kind != "wasmtime" && e.engine.kind != "wasmedge") {
    return s.Error("engine", "must be \"wasmtime\" or \"wasmedge\"");
  }
  if (e.engine.library.empty() && e.engine.kind == "wasmtime") {
    e.engine.library = DefaultWasmtimeLibrary();
  }
  e.default_cpu_quota_us = millis * e.cpu_period_us / 1000;
  e.ready_timeout = absl::Milliseconds(ready_ms);
  return c;
}

absl::StatusOr<HolderPodBackend::Setup> WasmBackend::Configure(const BackendContext& context) {
  ASSIGN_OR_RETURN(WasmConfig cfg, ParseWasmConfig(*context.config));
  // The engine is checked, not loaded: only the runners map its library.
  ASSIGN_OR_RETURN(std::unique_ptr<WasmEngine> engine, MakeWasmEngine(cfg.engine.engine));
  RETURN_IF_ERROR(Annotate(engine->Available(), "[wasm] engine"));
  Setup setup;
  setup.pod = cfg.pod;
  ASSIGN_OR_RETURN(setup.engine, MakeWasmContainerEngine(cfg.engine));
  spdlog::info("backend=wasm engine={} library={} runner={} root={}", cfg.engine.engine.kind,
               cfg.engine.engine.library, cfg.engine.runner, cfg.engine.root);
  return setup;
}

}  // namespace kuasar
