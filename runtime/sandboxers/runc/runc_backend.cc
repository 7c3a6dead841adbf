#include "runtime/sandboxers/runc/runc_backend.h"

#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/core/toml_section.h"

namespace kuasar {

absl::StatusOr<RuncConfig> ParseRuncConfig(const Config& config) {
  RuncConfig c;
  c.runtime_root = config.sandboxer.state_dir + "/runtime";
  c.pod.holder = BesideExecutable("kuasar-holder");
  TomlSection top(config.root.get(), "", config.source), s(nullptr, "", "");
  RETURN_IF_ERROR(top.Sub("runc", &s));
  RETURN_IF_ERROR(s.Get("runtime", &c.runtime));
  RETURN_IF_ERROR(s.Get("runtime_root", &c.runtime_root));
  RETURN_IF_ERROR(s.Get("systemd_cgroup", &c.systemd_cgroup));
  RETURN_IF_ERROR(ParseHolderPodKeys(s, &c.pod));
  RETURN_IF_ERROR(s.CheckNoUnknownKeys());
  return c;
}

absl::StatusOr<HolderPodBackend::Setup> RuncBackend::Configure(const BackendContext& context) {
  ASSIGN_OR_RETURN(RuncConfig cfg, ParseRuncConfig(*context.config));
  Setup setup;
  setup.pod = cfg.pod;
  ASSIGN_OR_RETURN(setup.engine, MakeOciCliEngine({cfg.runtime, cfg.runtime_root,
                                                   cfg.systemd_cgroup, absl::Seconds(30)}));
  std::string crun_problem = CrunHostProblem();
  if (cfg.runtime == "auto" && !crun_problem.empty()) {
    spdlog::warn("backend=runc runtime=runc reason=\"crun cannot run here: {}\"", crun_problem);
  }
  spdlog::info("backend=runc runtime={} root={}", setup.engine->Name(), cfg.runtime_root);
  return setup;
}

}  // namespace kuasar
