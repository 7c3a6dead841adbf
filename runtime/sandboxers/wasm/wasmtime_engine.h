// WasmtimeEngine: WasmEngine over Wasmtime's C API, loaded at run time from
// libwasmtime.so (see wasmtime_api.h). Memory limits use the store limiter (a
// memory.grow past the limit fails, as WebAssembly defines); CPU limits and Interrupt
// use epoch interruption (see cpu_throttle.h for why epochs and not fuel). Without the
// headers at build time or the library at run time it reports FAILED_PRECONDITION
// "Wasmtime C API not installed (run ci/install-wasm-deps)". Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "runtime/sandboxers/wasm/wasm_engine.h"

namespace kuasar {

// `library`: path of libwasmtime.so ("" = DefaultWasmtimeLibrary()).
std::unique_ptr<WasmEngine> MakeWasmtimeEngine(std::string library);

// The Wasmtime version of the headers this build has ("" without them).
std::string_view WasmtimeHeadersVersion();

}  // namespace kuasar
