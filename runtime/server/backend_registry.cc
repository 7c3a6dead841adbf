#include "runtime/server/backend_registry.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/sandboxers/appkernel/appkernel_backend.h"
#include "runtime/sandboxers/runc/runc_backend.h"
#include "runtime/sandboxers/vmm/backend/hypervisor_registry.h"
#include "runtime/sandboxers/vmm/backend/vmm_backend.h"
#include "runtime/sandboxers/wasm/wasm_backend.h"

namespace kuasar {
namespace {

class UnavailableBackend final : public SandboxBackend {
 public:
  UnavailableBackend(std::string_view kind, std::string_view reason)
      : kind_(kind), reason_(reason) {}

  std::string_view Kind() const override { return kind_; }
  absl::Status Init(const BackendContext&) override { return absl::OkStatus(); }
  absl::Status Create(SandboxRecord&) override { return Refuse(); }
  absl::Status Start(SandboxRecord&) override { return Refuse(); }
  absl::Status Stop(SandboxRecord&, absl::Duration) override { return absl::OkStatus(); }
  absl::Status Cleanup(SandboxRecord&) override { return absl::OkStatus(); }
  absl::Status Recover(SandboxRecord&) override { return Refuse(); }
  absl::StatusOr<MetricSample> Metrics(const SandboxRecord&) override { return Refuse(); }

 private:
  absl::Status Refuse() const {
    return absl::UnimplementedError(
        absl::StrCat("the ", kind_, " sandboxer is not available: ", reason_));
  }
  std::string kind_;
  std::string reason_;
};

}  // namespace

std::unique_ptr<SandboxBackend> MakeUnavailableBackend(std::string_view kind,
                                                       std::string_view reason) {
  return std::make_unique<UnavailableBackend>(kind, reason);
}

absl::StatusOr<std::unique_ptr<SandboxBackend>> MakeBackend(std::string_view kind) {
  if (kind == "runc") return std::unique_ptr<SandboxBackend>(std::make_unique<RuncBackend>());
  if (kind == "wasm") return std::unique_ptr<SandboxBackend>(std::make_unique<WasmBackend>());
  if (kind == "vmm") {
    return std::unique_ptr<SandboxBackend>(std::make_unique<VmmBackend>(MakeHypervisorFactory));
  }
  if (kind == "appkernel") {
    return std::unique_ptr<SandboxBackend>(std::make_unique<AppKernelBackend>());
  }
  return absl::InvalidArgumentError(absl::StrFormat("unknown sandbox kind \"%s\"", kind));
}

}  // namespace kuasar
