// What kuasar-wasm-run gives up before it reports ready, as an OCI runtime would for a
// container's process: the spec's rlimits, its user and groups, its capability sets
// (bounding set dropped; effective/permitted/inheritable set when the process stays
// root, while a non-root user loses them all on setuid), and no_new_privs. The module
// itself can only reach what WASI hands it; this limits what a bug in the engine could.
#pragma once

#include "absl/status/status.h"
#include "runtime/sandboxers/wasm/wasm_container_spec.h"

namespace kuasar {

absl::Status ApplyRlimits(const WasmContainerSpec& spec);
// Capability names this kernel knows; unknown names are ignored.
absl::Status DropPrivileges(const WasmContainerSpec& spec);

}  // namespace kuasar
