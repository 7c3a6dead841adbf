// WasmContainerEngine: the ContainerEngine of the wasm sandboxer, so OciTaskService
// serves containerd's Task API for wasm pods unchanged. Each container is one
// kuasar-wasm-run process, spawned by the pod's holder (which reaps it and reports its
// exit): Create spawns it and waits until it joined the pod and compiled the module;
// Start releases it; Kill/Pause/Resume are signals (SIGSTOP/SIGCONT for pause); Delete
// kills what is left and removes the container's cgroup and state. Exec and Update are
// not supported. State per container (<root>/<id>/state.json: pid, start time, cgroup)
// is on disk, so a restarted sandboxer drives containers it did not create.
// Thread-safe: calls on different containers are independent; OciTaskService
// serializes calls on one.
#pragma once

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "runtime/oci/container_engine.h"
#include "runtime/sandboxers/wasm/wasm_engine.h"

namespace kuasar {

struct WasmContainerEngineOptions {
  std::string runner;  // kuasar-wasm-run
  std::string root;    // per-container state
  WasmEngineOptions engine;
  int64_t default_memory_limit = 0;
  int64_t default_cpu_quota_us = 0;
  int64_t cpu_period_us = 100000;
  int64_t cgroup_memory_overhead = int64_t{64} << 20;
  absl::Duration ready_timeout = absl::Seconds(30);
};

// Makes `root`; checks the runner is executable.
absl::StatusOr<std::unique_ptr<ContainerEngine>> MakeWasmContainerEngine(
    WasmContainerEngineOptions options);

}  // namespace kuasar
