// WasmBackend: the wasm sandbox kind. Pods are the runc sandboxer's (HolderPodBackend: a
// kuasar-holder process owning the pod's namespaces, pod files, task socket, recovery);
// containers are WASI modules, each run by its own kuasar-wasm-run process with the
// configured engine (WasmContainerEngine). The sandboxer never loads the engine's library.
// Config: [wasm]. Thread-safe (see SandboxBackend).
#pragma once

#include <string>

#include "runtime/core/config.h"
#include "runtime/sandboxers/runc/holder_pod_backend.h"
#include "runtime/sandboxers/wasm/wasm_container_engine.h"

namespace kuasar {

struct WasmConfig {
  WasmContainerEngineOptions engine;  // engine, library, runner, root, defaults
  HolderPodConfig pod;                // holder, pod_cgroup_parent, holder_timeout_ms
};

// [wasm] keys (docs/wasm.md): engine, library, runner, runtime_root, default_memory_limit,
// default_cpu_millis, cpu_period_us, cgroup_memory_overhead, ready_timeout_ms, holder,
// pod_cgroup_parent, holder_timeout_ms.
absl::StatusOr<WasmConfig> ParseWasmConfig(const Config& config);

class WasmBackend final : public HolderPodBackend {
 public:
  std::string_view Kind() const override { return "wasm"; }

 private:
  absl::StatusOr<Setup> Configure(const BackendContext& context) override;
};

}  // namespace kuasar
