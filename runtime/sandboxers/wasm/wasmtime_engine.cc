#include "runtime/sandboxers/wasm/wasmtime_engine.h"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/wasm/cpu_throttle.h"

#if KUASAR_HAVE_WASMTIME
#include "runtime/sandboxers/wasm/wasmtime_api.h"
#endif

namespace kuasar {
namespace {

constexpr std::string_view kNotInstalled =
    "Wasmtime C API not installed (run ci/install-wasm-deps)";

#if KUASAR_HAVE_WASMTIME

// Increments the engine's epoch every `tick` until destroyed.
class EpochTicker {
 public:
  EpochTicker(const WasmtimeApi* api, const wasm_engine_t* engine, absl::Duration tick)
      : thread_([this, api, engine, tick] {
          std::unique_lock<std::mutex> l(mu_);
          while (!cv_.wait_for(l, absl::ToChronoNanoseconds(tick), [this] { return stop_; })) {
            api->wasmtime_engine_increment_epoch(engine);
          }
        }) {}
  ~EpochTicker() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: started once the fields above exist
};

class WasmtimeInstance final : public WasmInstance {
 public:
  WasmtimeInstance(const WasmtimeApi* api, WasmProgram program)
      : api_(api), program_(std::move(program)), throttle_(program_.limits) {}

  ~WasmtimeInstance() override {
    if (pre_) api_->wasmtime_instance_pre_delete(pre_);
    if (module_) api_->wasmtime_module_delete(module_);
    if (linker_) api_->wasmtime_linker_delete(linker_);
    if (store_) api_->wasmtime_store_delete(store_);
    if (engine_) api_->wasm_engine_delete(engine_);
  }

  absl::Status Prepare() {
    RETURN_IF_ERROR(CheckWasmModuleHeader(program_.module, program_.name));
    wasm_config_t* config = api_->wasm_config_new();
    // Always on: Interrupt needs it, and a check per loop header and call is cheap.
    api_->wasmtime_config_epoch_interruption_set(config, true);
    engine_ = api_->wasm_engine_new_with_config(config);
    if (engine_ == nullptr) return absl::InternalError("wasmtime: cannot create an engine");
    store_ = api_->wasmtime_store_new(engine_, nullptr, nullptr);
    wasmtime_context_t* ctx = api_->wasmtime_store_context(store_);
    const WasmLimits& lim = program_.limits;
    api_->wasmtime_store_limiter(store_, lim.memory_bytes > 0 ? lim.memory_bytes : -1, -1, -1, -1,
                                 -1);
    api_->wasmtime_store_epoch_deadline_callback(store_, &WasmtimeInstance::OnEpoch, this, nullptr);
    api_->wasmtime_context_set_epoch_deadline(ctx, 1);
    RETURN_IF_ERROR(ConfigureWasi(ctx));

    linker_ = api_->wasmtime_linker_new(engine_);
    if (wasmtime_error_t* err = api_->wasmtime_linker_define_wasi(linker_)) {
      return absl::InternalError("wasmtime: define WASI: " + api_->TakeMessage(err));
    }
    if (wasmtime_error_t* err = api_->wasmtime_module_new(
            engine_, reinterpret_cast<const uint8_t*>(program_.module.data()),
            program_.module.size(), &module_)) {
      return absl::InvalidArgumentError(absl::StrFormat("%s is not a valid WebAssembly module: %s",
                                                        program_.name, api_->TakeMessage(err)));
    }
    RETURN_IF_ERROR(CheckStartExport());
    if (wasmtime_error_t* err = api_->wasmtime_linker_instantiate_pre(linker_, module_, &pre_)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s needs imports WASI preview 1 does not provide: %s", program_.name,
                          api_->TakeMessage(err)));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<WasmOutcome> Run() override {
    if (ran_.exchange(true)) return absl::FailedPreconditionError("the module already ran");
    wasmtime_context_t* ctx = api_->wasmtime_store_context(store_);
    throttle_.Start();
    std::unique_ptr<EpochTicker> ticker;
    if (throttle_.active()) ticker = std::make_unique<EpochTicker>(api_, engine_, throttle_.tick());
    wasmtime_instance_t instance;
    wasm_trap_t* trap = nullptr;
    wasmtime_error_t* err = api_->wasmtime_instance_pre_instantiate(pre_, ctx, &instance, &trap);
    if (err == nullptr && trap == nullptr) {
      wasmtime_extern_t start;
      if (!api_->wasmtime_instance_export_get(ctx, &instance, "_start", 6, &start) ||
          start.kind != WASMTIME_EXTERN_FUNC) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s has no _start function (not a WASI command)", program_.name));
      }
      err = api_->wasmtime_func_call(ctx, &start.of.func, nullptr, 0, nullptr, 0, &trap);
      api_->wasmtime_extern_delete(&start);
    }
    ticker.reset();
    WasmOutcome out;
    int status = 0;
    if (err != nullptr && api_->wasmtime_error_exit_status(err, &status)) {
      out.exit_code = status;
      api_->TakeMessage(err);
      return out;
    }
    if (err == nullptr && trap == nullptr) return out;
    std::string message = err != nullptr ? api_->TakeMessage(err) : api_->TakeMessage(trap);
    if (err != nullptr && trap != nullptr) api_->TakeMessage(trap);
    out.kind = stop_.load();
    out.exit_code = -1;
    out.message =
        out.kind == WasmOutcome::Kind::kCpuTimeExceeded
            ? absl::StrFormat(
                  "CPU time limit of %s used up",
                  absl::FormatDuration(absl::Milliseconds(program_.limits.cpu_time_limit_ms)))
            : message;
    return out;
  }

  void Interrupt() override {
    WasmOutcome::Kind expected = WasmOutcome::Kind::kTrapped;
    stop_.compare_exchange_strong(expected, WasmOutcome::Kind::kInterrupted);
    api_->wasmtime_engine_increment_epoch(engine_);
  }

 private:
  absl::Status ConfigureWasi(wasmtime_context_t* ctx) {
    wasi_config_t* wasi = api_->wasi_config_new();
    std::vector<const char*> argv;
    for (const std::string& a : program_.args) argv.push_back(a.c_str());
    std::vector<std::string> names, values;
    for (const std::string& e : program_.env) {
      size_t eq = e.find('=');
      if (eq == std::string::npos || eq == 0) continue;
      names.push_back(e.substr(0, eq));
      values.push_back(e.substr(eq + 1));
    }
    std::vector<const char*> np, vp;
    for (size_t i = 0; i < names.size(); ++i) {
      np.push_back(names[i].c_str());
      vp.push_back(values[i].c_str());
    }
    absl::Status st;
    if (!api_->wasi_config_set_argv(wasi, argv.size(), argv.data())) {
      st = absl::InvalidArgumentError("WASI arguments must be UTF-8");
    } else if (!api_->wasi_config_set_env(wasi, np.size(), np.data(), vp.data())) {
      st = absl::InvalidArgumentError("WASI environment variables must be UTF-8");
    }
    for (const WasmPreopen& p : program_.preopens) {
      if (!st.ok()) break;
      if (!api_->wasi_config_preopen_dir(wasi, p.host_path.c_str(), p.guest_path.c_str(),
                                         !p.read_only)) {
        st = absl::FailedPreconditionError(
            absl::StrFormat("cannot preopen %s as %s for the module", p.host_path, p.guest_path));
      }
    }
    if (!st.ok()) {
      api_->wasi_config_delete(wasi);
      return st;
    }
    api_->wasi_config_inherit_stdin(wasi);
    api_->wasi_config_inherit_stdout(wasi);
    api_->wasi_config_inherit_stderr(wasi);
    if (wasmtime_error_t* err = api_->wasmtime_context_set_wasi(ctx, wasi)) {  // takes `wasi`
      return absl::InternalError("wasmtime: set WASI context: " + api_->TakeMessage(err));
    }
    return absl::OkStatus();
  }

  absl::Status CheckStartExport() {
    wasm_exporttype_vec_t exports;
    api_->wasmtime_module_exports(module_, &exports);
    bool found = false;
    for (size_t i = 0; i < exports.size; ++i) {
      const wasm_name_t* n = api_->wasm_exporttype_name(exports.data[i]);
      if (std::string_view(n->data, n->size) == "_start") found = true;
    }
    api_->wasm_exporttype_vec_delete(&exports);
    if (!found) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s has no _start export (not a WASI command module)", program_.name));
    }
    return absl::OkStatus();
  }

  // Runs on the module's thread each time the engine's epoch passes the deadline.
  static wasmtime_error_t* OnEpoch(const wasmtime_context_t*, void* data, uint64_t* delta,
                                   wasmtime_update_deadline_kind_t* kind) {
    auto* self = static_cast<WasmtimeInstance*>(data);
    *delta = 1;
    *kind = WASMTIME_UPDATE_DEADLINE_CONTINUE;
    if (self->stop_.load() == WasmOutcome::Kind::kInterrupted) {
      return self->api_->wasmtime_error_new("interrupted");
    }
    if (self->throttle_.active() && !self->throttle_.OnTick()) {
      self->stop_ = WasmOutcome::Kind::kCpuTimeExceeded;
      return self->api_->wasmtime_error_new("CPU time limit used up");
    }
    return nullptr;
  }

  const WasmtimeApi* api_;
  WasmProgram program_;
  CpuThrottle throttle_;
  wasm_engine_t* engine_ = nullptr;
  wasmtime_store_t* store_ = nullptr;
  wasmtime_linker_t* linker_ = nullptr;
  wasmtime_module_t* module_ = nullptr;
  wasmtime_instance_pre_t* pre_ = nullptr;
  std::atomic<bool> ran_{false};
  // Why a run stopped early; kTrapped means "not stopped by us".
  std::atomic<WasmOutcome::Kind> stop_{WasmOutcome::Kind::kTrapped};
};

#endif  // KUASAR_HAVE_WASMTIME

class WasmtimeEngine final : public WasmEngine {
 public:
  explicit WasmtimeEngine(std::string library)
      : library_(library.empty() ? DefaultWasmtimeLibrary() : std::move(library)) {}

  std::string_view Name() const override { return "wasmtime"; }

  absl::Status Available() const override {
#if KUASAR_HAVE_WASMTIME
    if (::access(library_.c_str(), R_OK) != 0) {
      return absl::FailedPreconditionError(
          absl::StrFormat("%s: no library at %s", kNotInstalled, library_));
    }
    return absl::OkStatus();
#else
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: this build found no Wasmtime headers in %s (install, then re-run cmake)",
        kNotInstalled, KUASAR_WASMTIME_DIR));
#endif
  }

  absl::StatusOr<std::unique_ptr<WasmInstance>> Prepare(WasmProgram program) override {
    RETURN_IF_ERROR(Available());
#if KUASAR_HAVE_WASMTIME
    ASSIGN_OR_RETURN(const WasmtimeApi* api, WasmtimeApi::Load(library_));
    auto instance = std::make_unique<WasmtimeInstance>(api, std::move(program));
    RETURN_IF_ERROR(instance->Prepare());
    return std::unique_ptr<WasmInstance>(std::move(instance));
#else
    (void)program;
    return absl::InternalError("unreachable");
#endif
  }

 private:
  std::string library_;
};

}  // namespace

std::unique_ptr<WasmEngine> MakeWasmtimeEngine(std::string library) {
  return std::make_unique<WasmtimeEngine>(std::move(library));
}

std::string_view WasmtimeHeadersVersion() {
#if KUASAR_HAVE_WASMTIME
  return WASMTIME_VERSION;
#else
  return "";
#endif
}

std::string DefaultWasmtimeLibrary() { return KUASAR_WASMTIME_DIR "/lib/libwasmtime.so"; }

}  // namespace kuasar
