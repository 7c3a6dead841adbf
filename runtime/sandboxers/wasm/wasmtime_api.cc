#include "runtime/sandboxers/wasm/wasmtime_api.h"

#include <dlfcn.h>

#include <map>
#include <memory>
#include <mutex>

#include "absl/strings/str_format.h"

namespace kuasar {

absl::StatusOr<const WasmtimeApi*> WasmtimeApi::Load(const std::string& library) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<WasmtimeApi>>* loaded =
      new std::map<std::string, std::unique_ptr<WasmtimeApi>>();
  std::lock_guard<std::mutex> l(mu);
  auto it = loaded->find(library);
  if (it != loaded->end()) return it->second.get();
  // RTLD_LOCAL: nothing else in the process sees its symbols. Never dlclosed: a Rust
  // library keeps thread-locals and its own threads.
  void* handle = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    return absl::FailedPreconditionError(absl::StrFormat(
        "Wasmtime C API not installed (run ci/install-wasm-deps): cannot load %s: %s", library,
        why ? why : "unknown error"));
  }
  auto api = std::make_unique<WasmtimeApi>();
#define KUASAR_WASMTIME_RESOLVE(name)                                                     \
  api->name = reinterpret_cast<decltype(api->name)>(::dlsym(handle, #name));              \
  if (api->name == nullptr) {                                                             \
    return absl::FailedPreconditionError(                                                 \
        absl::StrFormat("%s lacks %s: not the Wasmtime %s C API this build expects (run " \
                        "ci/install-wasm-deps)",                                          \
                        library, #name, WASMTIME_VERSION));                               \
  }
  KUASAR_WASMTIME_FUNCTIONS(KUASAR_WASMTIME_RESOLVE)
#undef KUASAR_WASMTIME_RESOLVE
  const WasmtimeApi* out = api.get();
  loaded->emplace(library, std::move(api));
  return out;
}

std::string WasmtimeApi::TakeMessage(wasmtime_error_t* error) const {
  if (error == nullptr) return "";
  wasm_name_t msg;
  wasmtime_error_message(error, &msg);
  std::string out(msg.data, msg.size);
  wasm_byte_vec_delete(&msg);
  wasmtime_error_delete(error);
  return out;
}

std::string WasmtimeApi::TakeMessage(wasm_trap_t* trap) const {
  if (trap == nullptr) return "";
  wasm_message_t msg;
  wasm_trap_message(trap, &msg);
  std::string out(msg.data, msg.size);
  // wasm_message_t is NUL-terminated; drop that from the text.
  while (!out.empty() && out.back() == '\0') out.pop_back();
  wasm_byte_vec_delete(&msg);
  wasm_trap_delete(trap);
  return out;
}

}  // namespace kuasar
