#include "runtime/sandboxers/appkernel/appkernel_backend.h"

#include <sys/mount.h>

#include <filesystem>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/id_check.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/core/pod_settings.h"
#include "runtime/sandboxers/appkernel/pod_sandbox_spec.h"

namespace kuasar {

AppKernelBackend::~AppKernelBackend() {
  if (runsc_root_.empty()) return;
  std::string pin = runsc_root_ + "/null-netns";
  // Concurrent runsc invocations may stack bind mounts there: unmount until none is left.
  for (int i = 0; i < 64 && ::umount2(pin.c_str(), MNT_DETACH) == 0; ++i) {
  }
}

absl::StatusOr<HolderPodBackend::Setup> AppKernelBackend::Configure(const BackendContext& ctx) {
  ASSIGN_OR_RETURN(AppKernelConfig cfg, ParseAppKernelConfig(*ctx.config));
  if (std::string problem = AppKernelRuntimeProblem(cfg); !problem.empty()) {
    return absl::FailedPreconditionError(problem);
  }
  sandboxes_dir_ = ctx.sandboxes_dir;
  // The pause process of every pod's sandbox container, in a rootfs of its own.
  pause_rootfs_ = ctx.config->sandboxer.state_dir + "/appkernel-pause";
  std::error_code ec;
  std::filesystem::create_directories(pause_rootfs_, ec);
  if (!ec) {
    std::filesystem::copy_file(cfg.pause, pause_rootfs_ + "/pause",
                               std::filesystem::copy_options::overwrite_existing, ec);
  }
  if (ec) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "appkernel: copying the pause binary %s into %s: %s", cfg.pause, pause_rootfs_,
        ec.message()));
  }
  absl::StatusOr<std::unique_ptr<RunscEngine>> engine = RunscEngine::Make(
      {cfg.runtime, cfg.root, RunscGlobalFlags(cfg), cfg.waiter, absl::Seconds(30)});
  if (!engine.ok()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "appkernel: gVisor runsc cannot be used (%s); ci/install-go-tools installs it into "
        "/opt/kuasar-tools/bin", engine.status().message()));
  }
  runsc_ = engine->get();
  runsc_root_ = cfg.root;
  Setup setup;
  setup.pod = cfg.pod;
  setup.engine = std::move(*engine);
  spdlog::info("backend=appkernel runtime={} root={} platform={} network={}", cfg.runtime,
               cfg.root, cfg.platform, cfg.network);
  return setup;
}

absl::Status AppKernelBackend::OnPodStarted(const SandboxRecord& rec, ProcessSpawner& spawner) {
  absl::Time t0 = absl::Now();
  ASSIGN_OR_RETURN(std::string dir, PathUnder(sandboxes_dir_, rec.id, "sandbox id"));
  std::string bundle = dir + "/appkernel";
  std::error_code ec;
  std::filesystem::create_directories(bundle, ec);
  if (ec) return absl::InternalError(absl::StrFormat("mkdir %s: %s", bundle, ec.message()));
  PodSettings settings = PodSettings::FromJson(rec.backend.value("pod", nlohmann::json::object()));
  PodSandboxSpecInput in;
  in.sandbox_id = rec.id;
  in.rootfs = pause_rootfs_;
  // The holder's child owns the pod's namespaces (rec.pid): the Sentry's netstack runs there.
  if (!settings.host_network && rec.pid > 0) {
    in.netns_path = absl::StrFormat("/proc/%d/ns/net", rec.pid);
  }
  in.hostname = settings.hostname;
  RETURN_IF_ERROR(WriteFileAtomically(bundle + "/config.json", PodSandboxSpec(in).dump()));
  ASSIGN_OR_RETURN(pid_t sentry, runsc_->CreatePodSandbox(spawner, rec.id, bundle));
  spdlog::info("sandbox={} op=appkernel-sandbox sentry_pid={} ms={}", rec.id, sentry,
               absl::ToInt64Milliseconds(absl::Now() - t0));
  return absl::OkStatus();
}

void AppKernelBackend::OnPodStopping(const SandboxRecord& rec) {
  if (runsc_ == nullptr || !ValidateId(rec.id).ok()) return;
  if (absl::Status st = runsc_->DeletePodSandbox(rec.id); !st.ok()) {
    spdlog::warn("sandbox={} op=appkernel-sandbox-delete error=\"{}\"", rec.id, st.message());
  }
}

}  // namespace kuasar
