// AppKernelBackend: the App Kernel sandbox kind. A pod is a kuasar-holder owning the pod's
// network namespace (HolderPodBackend's pod model) plus one gVisor Sentry (a runsc sandbox
// container running a pause process, created at Start); every app container of the pod
// joins that Sentry (RunscEngine). Config: [appkernel]. Thread-safe (see SandboxBackend).
#pragma once

#include <string>

#include "runtime/sandboxers/appkernel/appkernel_config.h"
#include "runtime/sandboxers/appkernel/runsc_engine.h"
#include "runtime/sandboxers/runc/holder_pod_backend.h"

namespace kuasar {

class AppKernelBackend final : public HolderPodBackend {
 public:
  // Unmounts runsc's <root>/null-netns pin (gVisor runsc/specutils/namespace.go: "must be
  // called before removing a shared root"); runsc pins it again when it next needs it.
  ~AppKernelBackend() override;
  std::string_view Kind() const override { return "appkernel"; }

 private:
  absl::StatusOr<Setup> Configure(const BackendContext& context) override;
  absl::Status OnPodStarted(const SandboxRecord& record, ProcessSpawner& spawner) override;
  void OnPodStopping(const SandboxRecord& record) override;

  std::string runsc_root_;
  std::string sandboxes_dir_;
  std::string pause_rootfs_;
  RunscEngine* runsc_ = nullptr;  // owned by HolderPodBackend as its engine
};

}  // namespace kuasar
