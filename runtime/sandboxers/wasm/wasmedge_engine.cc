#include "runtime/sandboxers/wasm/wasmedge_engine.h"

#include "absl/strings/str_format.h"

namespace kuasar {
namespace {

class WasmEdgeEngine final : public WasmEngine {
 public:
  explicit WasmEdgeEngine(std::string library) : library_(std::move(library)) {}

  std::string_view Name() const override { return "wasmedge"; }

  absl::Status Available() const override {
    return absl::FailedPreconditionError(absl::StrFormat(
        "WasmEdge is not available in this build: its C library (libwasmedge%s) is not "
        "packaged by Debian 12, PyPI or crates.io, so kuasar cannot embed it here; set "
        "[wasm] engine = \"wasmtime\"",
        library_.empty() ? "" : ", configured as " + library_));
  }

  absl::StatusOr<std::unique_ptr<WasmInstance>> Prepare(WasmProgram) override {
    return Available();
  }

 private:
  std::string library_;
};

}  // namespace

std::unique_ptr<WasmEngine> MakeWasmEdgeEngine(std::string library) {
  return std::make_unique<WasmEdgeEngine>(std::move(library));
}

}  // namespace kuasar
