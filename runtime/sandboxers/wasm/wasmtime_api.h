// WasmtimeApi: the functions of Wasmtime's C API this engine calls, resolved with dlsym
// from a libwasmtime.so opened with dlopen. The sandboxer itself never loads the library;
// only kuasar-wasm-run (one process per container) does, and the shared file-backed pages
// are counted once across all of them. Declarations come from the installed headers
// (ci/install-wasm-deps), so a mismatch of the function types is a compile error.
// Compiled only when the headers were found (KUASAR_HAVE_WASMTIME). Thread-safe: the
// table is immutable once loaded; loading is serialized.
#pragma once

#include <wasmtime.h>

#include <string>

#include "absl/status/statusor.h"

namespace kuasar {

#define KUASAR_WASMTIME_FUNCTIONS(X)        \
  X(wasm_config_new)                        \
  X(wasm_engine_new_with_config)            \
  X(wasm_engine_delete)                     \
  X(wasm_byte_vec_delete)                   \
  X(wasm_trap_message)                      \
  X(wasm_trap_delete)                       \
  X(wasm_exporttype_name)                   \
  X(wasm_exporttype_vec_delete)             \
  X(wasmtime_config_epoch_interruption_set) \
  X(wasmtime_engine_increment_epoch)        \
  X(wasmtime_store_new)                     \
  X(wasmtime_store_context)                 \
  X(wasmtime_store_delete)                  \
  X(wasmtime_store_limiter)                 \
  X(wasmtime_store_epoch_deadline_callback) \
  X(wasmtime_context_set_epoch_deadline)    \
  X(wasmtime_context_set_wasi)              \
  X(wasi_config_new)                        \
  X(wasi_config_delete)                     \
  X(wasi_config_set_argv)                   \
  X(wasi_config_set_env)                    \
  X(wasi_config_inherit_stdin)              \
  X(wasi_config_inherit_stdout)             \
  X(wasi_config_inherit_stderr)             \
  X(wasi_config_preopen_dir)                \
  X(wasmtime_module_new)                    \
  X(wasmtime_module_delete)                 \
  X(wasmtime_module_exports)                \
  X(wasmtime_linker_new)                    \
  X(wasmtime_linker_delete)                 \
  X(wasmtime_linker_define_wasi)            \
  X(wasmtime_linker_instantiate_pre)        \
  X(wasmtime_instance_pre_instantiate)      \
  X(wasmtime_instance_pre_delete)           \
  X(wasmtime_instance_export_get)           \
  X(wasmtime_extern_delete)                 \
  X(wasmtime_func_call)                     \
  X(wasmtime_error_new)                     \
  X(wasmtime_error_message)                 \
  X(wasmtime_error_delete)                  \
  X(wasmtime_error_exit_status)

struct WasmtimeApi {
#define KUASAR_WASMTIME_POINTER(name) decltype(&::name) name = nullptr;
  KUASAR_WASMTIME_FUNCTIONS(KUASAR_WASMTIME_POINTER)
#undef KUASAR_WASMTIME_POINTER

  // Opens `library` once per process (later calls return the same table) and resolves
  // every function; FAILED_PRECONDITION naming the file or the missing symbol.
  static absl::StatusOr<const WasmtimeApi*> Load(const std::string& library);

  // The text of an error or trap (consumed: it is deleted).
  std::string TakeMessage(wasmtime_error_t* error) const;
  std::string TakeMessage(wasm_trap_t* trap) const;
};

}  // namespace kuasar
