// Which SandboxBackend serves each sandbox kind. A kind whose backend is not built (or
// cannot run on this host) still gets a backend that fails every sandbox call with a
// clear UNIMPLEMENTED, so the daemon starts and answers Platform and health checks.
#pragma once

#include <memory>
#include <string_view>

#include "runtime/core/sandbox_backend.h"

namespace kuasar {

// UNIMPLEMENTED-refusing backend for kinds not built yet; an error for unknown kinds.
absl::StatusOr<std::unique_ptr<SandboxBackend>> MakeBackend(std::string_view kind);

// A backend that refuses every sandbox with UNIMPLEMENTED, naming the kind and why.
std::unique_ptr<SandboxBackend> MakeUnavailableBackend(std::string_view kind,
                                                       std::string_view reason);

}  // namespace kuasar
