#include "runtime/sandboxers/wasm/wasm_engine.h"

#include "absl/strings/str_format.h"
#include "runtime/sandboxers/wasm/wasmedge_engine.h"
#include "runtime/sandboxers/wasm/wasmtime_engine.h"

namespace kuasar {

int ExitStatusFor(const WasmOutcome& o) {
  switch (o.kind) {
    case WasmOutcome::Kind::kExited:
      return o.exit_code & 0xff;
    case WasmOutcome::Kind::kTrapped:
      return 134;
    case WasmOutcome::Kind::kInterrupted:
      return 130;
    case WasmOutcome::Kind::kCpuTimeExceeded:
      return 152;
  }
  return 134;
}

std::string DescribeOutcome(const WasmOutcome& o) {
  switch (o.kind) {
    case WasmOutcome::Kind::kExited:
      return absl::StrFormat("exited with %d", o.exit_code);
    case WasmOutcome::Kind::kTrapped:
      return "trapped: " + o.message;
    case WasmOutcome::Kind::kInterrupted:
      return "interrupted";
    case WasmOutcome::Kind::kCpuTimeExceeded:
      return "stopped: " + o.message;
  }
  return o.message;
}

absl::Status CheckWasmModuleHeader(std::string_view bytes, std::string_view name) {
  // Core modules: "\0asm" then version 1 (01 00 00 00). Components share the magic but
  // carry version 0x0d and layer 1 (0d 00 01 00).
  if (bytes.size() < 8 || bytes.substr(0, 4) != std::string_view("\0asm", 4)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s is not a WebAssembly module (no \\0asm header)", name));
  }
  if (bytes[6] == 1 && bytes[7] == 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s is a WebAssembly component; only WASI preview 1 core modules are supported", name));
  }
  if (bytes.substr(4, 4) != std::string_view("\1\0\0\0", 4)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s has an unknown WebAssembly binary version", name));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<WasmEngine>> MakeWasmEngine(const WasmEngineOptions& options) {
  if (options.kind == "wasmtime") return MakeWasmtimeEngine(options.library);
  if (options.kind == "wasmedge") return MakeWasmEdgeEngine(options.library);
  return absl::InvalidArgumentError(absl::StrFormat(
      "unknown wasm engine \"%s\" (expected \"wasmtime\" or \"wasmedge\")", options.kind));
}

}  // namespace kuasar
