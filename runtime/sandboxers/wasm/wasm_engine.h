// WasmEngine: a WebAssembly runtime embedded through its C API, as the per-container
// runner (kuasar-wasm-run) uses it. Prepare compiles a WASI preview 1 command module and
// links it with its argv, environment, preopened directories and limits; Run instantiates
// it and calls _start on the calling thread, with stdio inherited (fds 0/1/2).
// Engines: Wasmtime (WasmtimeEngine, its library loaded with dlopen on first Prepare) and
// WasmEdge (interface only: it cannot be had here, so it reports why).
// A WasmEngine may be shared between threads; a WasmInstance runs on one thread, and only
// Interrupt may be called from another.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kuasar {

struct WasmPreopen {
  std::string host_path;   // a directory on the host
  std::string guest_path;  // the name the module sees ("/", "/data", ".")
  bool read_only = false;
};

struct WasmLimits {
  int64_t memory_bytes = 0;  // cap on each linear memory (0: none)
  int64_t cpu_quota_us = 0;  // CPU bandwidth: this much CPU time per period (0: none)
  int64_t cpu_period_us = 100000;
  int64_t cpu_time_limit_ms = 0;  // total CPU time the module may use (0: none)
};

struct WasmProgram {
  std::string name;               // for messages: the module's path in the container
  std::string module;             // the .wasm binary
  std::vector<std::string> args;  // argv, program name included
  std::vector<std::string> env;   // NAME=value
  std::vector<WasmPreopen> preopens;
  WasmLimits limits;
};

struct WasmOutcome {
  enum class Kind {
    kExited,           // _start returned (code 0) or the module called proc_exit(code)
    kTrapped,          // a wasm trap or a host error (memory limit, bad access, ...)
    kInterrupted,      // Interrupt() was called
    kCpuTimeExceeded,  // limits.cpu_time_limit_ms used up
  };
  Kind kind = Kind::kExited;
  int exit_code = 0;
  std::string message;  // what the engine said, for everything but kExited
};

// The exit status the runner reports for an outcome: the WASI exit code; 134 (128+SIGABRT,
// as Wasmtime's own CLI) for a trap; 152 (128+SIGXCPU, as the kernel's RLIMIT_CPU) when the
// CPU time limit ran out; 130 (128+SIGINT) when interrupted.
int ExitStatusFor(const WasmOutcome& outcome);
std::string DescribeOutcome(const WasmOutcome& outcome);

class WasmInstance {
 public:
  virtual ~WasmInstance() = default;
  // Instantiates the module and runs its _start to the end. Call once.
  virtual absl::StatusOr<WasmOutcome> Run() = 0;
  // Stops a running Run at its next epoch check; safe from any thread.
  virtual void Interrupt() = 0;
};

class WasmEngine {
 public:
  virtual ~WasmEngine() = default;
  virtual std::string_view Name() const = 0;
  // OK if this engine can run modules here, else FAILED_PRECONDITION saying why. Cheap:
  // checks files, loads nothing.
  virtual absl::Status Available() const = 0;
  // Compiles and links; INVALID_ARGUMENT for a module that is not a valid WASI command.
  virtual absl::StatusOr<std::unique_ptr<WasmInstance>> Prepare(WasmProgram program) = 0;
};

struct WasmEngineOptions {
  std::string kind = "wasmtime";  // "wasmtime" | "wasmedge"
  std::string library;            // the engine's shared library; "" = its default
};

// INVALID_ARGUMENT for an unknown kind; an engine that cannot run here is still returned
// (its Available() and Prepare() say why).
absl::StatusOr<std::unique_ptr<WasmEngine>> MakeWasmEngine(const WasmEngineOptions& options);

// Where ci/install-wasm-deps put libwasmtime.so for this build (KUASAR_WASMTIME_DIR).
std::string DefaultWasmtimeLibrary();

// A first check of a module's bytes: the core-module header, not a component.
absl::Status CheckWasmModuleHeader(std::string_view bytes, std::string_view name);

}  // namespace kuasar
