// WasmEdgeEngine: the WasmEngine slot for WasmEdge. Its C library (libwasmedge) cannot be
// had on these machines (no Debian package; PyPI and crates.io carry no prebuilt
// library), so this engine keeps the interface and every call says why, and its tests
// skip with that reason. A build with libwasmedge would implement it here alone.
#pragma once

#include <memory>

#include "runtime/sandboxers/wasm/wasm_engine.h"

namespace kuasar {

std::unique_ptr<WasmEngine> MakeWasmEdgeEngine(std::string library);

}  // namespace kuasar
