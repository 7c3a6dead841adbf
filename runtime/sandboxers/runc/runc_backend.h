// RuncBackend: the runc sandbox kind. A pod is a kuasar-holder process owning the pod's
// namespaces (the pod model of HolderPodBackend); its containers run under crun or runc.
// Config: [runc]. Thread-safe (see SandboxBackend).
#pragma once

#include <string>

#include "runtime/sandboxers/runc/holder_pod_backend.h"

namespace kuasar {

struct RuncConfig {
  std::string runtime = "auto";  // auto (crun where it works, else runc) | crun | runc | a path
  std::string runtime_root;      // default <state_dir>/runtime
  bool systemd_cgroup = false;
  HolderPodConfig pod;  // holder, pod_cgroup_parent, holder_timeout_ms
};

absl::StatusOr<RuncConfig> ParseRuncConfig(const Config& config);

class RuncBackend final : public HolderPodBackend {
 public:
  std::string_view Kind() const override { return "runc"; }

 private:
  absl::StatusOr<Setup> Configure(const BackendContext& context) override;
};

}  // namespace kuasar
