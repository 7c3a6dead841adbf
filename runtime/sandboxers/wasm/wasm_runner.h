// The per-container process of the wasm sandboxer (kuasar-wasm-run): reads the bundle's
// OCI spec, joins the pod's namespaces and the container's cgroup, compiles the module
// with the configured WasmEngine, reports ready, waits for the start signal (see
// runner_handshake.h), then runs the module's _start with WASI, stdio inherited (fds 0/1/2
// are containerd's FIFOs), and returns the module's exit status. Single-threaded apart from
// what the engine starts.
#pragma once

#include <string>

#include "runtime/sandboxers/wasm/wasm_engine.h"

namespace kuasar {

struct RunnerOptions {
  std::string bundle;
  // Where the handshake FIFOs are; "" runs the module at once (tests, manual use).
  std::string state_dir;
  WasmEngineOptions engine;
  // Applied where the spec sets no memory limit / CPU quota.
  int64_t default_memory_limit = 0;
  int64_t default_cpu_quota_us = 0;
  int64_t cpu_period_us = 100000;
  // The container cgroup's memory limit is the module's plus this, for the engine's own
  // memory (code, runtime): the module then meets its limit as a failed memory.grow
  // rather than the whole process being OOM-killed.
  int64_t cgroup_memory_overhead = int64_t{64} << 20;
};

// Runs the container; returns the exit status for the process (see ExitStatusFor). Errors
// before the module starts are reported through the handshake and on stderr, status 1.
int RunWasmContainer(const RunnerOptions& options);

}  // namespace kuasar
