// kuasar-wasm-run: runs one wasm container (see wasm_runner.h). Started by the pod's
// holder on behalf of the wasm sandboxer; also usable by hand on a bundle:
//   kuasar-wasm-run --bundle DIR [--state-dir DIR] [--engine wasmtime] [--library PATH]
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "runtime/base/logging.h"
#include "runtime/sandboxers/wasm/wasm_runner.h"

int main(int argc, char** argv) {
  CLI::App app{"kuasar-wasm-run: runs a WASI module as an OCI container"};
  kuasar::RunnerOptions o;
  o.engine.library = kuasar::DefaultWasmtimeLibrary();
  app.add_option("--bundle", o.bundle, "OCI bundle (config.json, rootfs)")->required();
  app.add_option("--state-dir", o.state_dir, "handshake FIFOs; without, run at once");
  app.add_option("--engine", o.engine.kind, "wasmtime | wasmedge");
  app.add_option("--library", o.engine.library, "the engine's shared library");
  app.add_option("--default-memory-limit", o.default_memory_limit, "bytes, when the spec has none");
  app.add_option("--default-cpu-quota-us", o.default_cpu_quota_us,
                 "per period, when the spec has none");
  app.add_option("--cpu-period-us", o.cpu_period_us, "period of the default quota");
  app.add_option("--cgroup-memory-overhead", o.cgroup_memory_overhead,
                 "bytes added to the module's limit for the cgroup's");
  CLI11_PARSE(app, argc, argv);
  // Library logs (cgroup code) must not reach the module's stdout.
  (void)kuasar::InitLogging("warn", "kuasar-wasm-run");
  // A container starts with default signal handling, whatever its spawner ignored.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  int status = kuasar::RunWasmContainer(o);
  std::fflush(nullptr);
  std::_Exit(status);  // no teardown of the engine's threads and thread-locals
}
