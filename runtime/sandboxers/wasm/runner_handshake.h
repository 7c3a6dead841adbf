// The handshake between WasmContainerEngine (in the sandboxer) and kuasar-wasm-run (a
// child of the pod's holder), over two FIFOs in the container's state dir:
//   ready  the runner writes "OK\n", or "ERR <status code>\n<message>", once it joined the
//          pod and compiled the module, then closes it; the engine's Create reads it.
//   start  the runner waits for one byte; the engine's Start writes it.
// FIFOs rather than inherited pipes: the holder passes its children stdio only, and named
// files outlive a sandboxer restart between Create and Start. Each side's object belongs
// to one thread.
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/base/unique_fd.h"

namespace kuasar {

std::string ReadyFifoPath(const std::string& state_dir);
std::string StartFifoPath(const std::string& state_dir);

// The runner's side.
class RunnerHandshake {
 public:
  // Opens both FIFOs without blocking; fails if the engine is not listening on `ready`.
  static absl::StatusOr<RunnerHandshake> Open(const std::string& state_dir);

  absl::Status ReportReady();
  void ReportError(const absl::Status& status);
  // Blocks until the engine says start. CANCELLED if it closed the FIFO without a byte.
  absl::Status WaitForStart();

 private:
  RunnerHandshake(UniqueFd ready, UniqueFd start)
      : ready_(std::move(ready)), start_(std::move(start)) {}
  UniqueFd ready_, start_;
};

// The engine's side.
// Makes the two FIFOs in `state_dir` (which must exist) and opens `ready` for reading,
// before the runner is spawned.
absl::StatusOr<UniqueFd> PrepareHandshake(const std::string& state_dir);
// Waits for the runner's report on `ready_fd`: OK, the runner's own error, or an error if
// `runner_alive` turns false first or `timeout` passes.
absl::Status AwaitRunnerReady(int ready_fd, absl::Duration timeout,
                              const std::function<bool()>& runner_alive);
// Tells a waiting runner to run the module; FAILED_PRECONDITION if none is waiting.
absl::Status SignalRunnerStart(const std::string& state_dir);

}  // namespace kuasar
