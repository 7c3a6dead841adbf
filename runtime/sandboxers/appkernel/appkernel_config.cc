#include "runtime/sandboxers/appkernel/appkernel_config.h"

#include "absl/strings/match.h"
#include "runtime/base/status_macros.h"
#include "runtime/core/toml_section.h"

namespace kuasar {

absl::StatusOr<AppKernelConfig> ParseAppKernelConfig(const Config& config) {
  AppKernelConfig c;
  c.root = config.sandboxer.state_dir + "/runsc";
  c.waiter = BesideExecutable("kuasar-appkernel-wait");
  c.pause = BesideExecutable("kuasar-appkernel-pause");
  c.pod.holder = BesideExecutable("kuasar-holder");
  TomlSection top(config.root.get(), "", config.source), s(nullptr, "", "");
  RETURN_IF_ERROR(top.Sub("appkernel", &s));
  RETURN_IF_ERROR(s.Get("runtime", &c.runtime));
  RETURN_IF_ERROR(s.Get("root", &c.root));
  RETURN_IF_ERROR(s.Get("platform", &c.platform));
  RETURN_IF_ERROR(s.Get("network", &c.network));
  RETURN_IF_ERROR(s.Get("flags", &c.flags));
  RETURN_IF_ERROR(s.Get("waiter", &c.waiter));
  RETURN_IF_ERROR(s.Get("pause", &c.pause));
  RETURN_IF_ERROR(ParseHolderPodKeys(s, &c.pod));
  RETURN_IF_ERROR(s.CheckNoUnknownKeys());
  if (c.runtime.empty()) return s.Error("runtime", "must name runsc (or quark)");
  if (c.root.empty() || c.root[0] != '/') return s.Error("root", "must be an absolute path");
  if (c.platform != "systrap" && c.platform != "ptrace" && c.platform != "kvm") {
    return s.Error("platform", "must be \"systrap\", \"ptrace\" or \"kvm\"");
  }
  if (c.network != "sandbox" && c.network != "host" && c.network != "none") {
    return s.Error("network", "must be \"sandbox\", \"host\" or \"none\"");
  }
  for (const std::string& f : c.flags) {
    // Each is one argv element; the keys above own these, so they are not repeated here.
    if (!absl::StartsWith(f, "--") || f.size() < 3) {
      return s.Error("flags", "each flag must be one \"--name[=value]\" argument");
    }
    for (const char* owned : {"--root", "--platform", "--network", "--log"}) {
      if (f == owned || absl::StartsWith(f, std::string(owned) + "=")) {
        return s.Error("flags", std::string(owned) + " is set by its own key or by the sandboxer");
      }
    }
  }
  return c;
}

std::string AppKernelRuntimeProblem(const AppKernelConfig& config) {
  if (config.runtime == "quark") {
    return "Quark is not available in this build: its source (QuarkContainer/Quark) is not "
           "reachable from this machine, so it cannot be built; set [appkernel] runtime = "
           "\"runsc\" (gVisor, installed by ci/install-go-tools)";
  }
  return "";
}

std::vector<std::string> RunscGlobalFlags(const AppKernelConfig& config) {
  std::vector<std::string> flags = {"--platform=" + config.platform,
                                    "--network=" + config.network};
  flags.insert(flags.end(), config.flags.begin(), config.flags.end());
  return flags;
}

}  // namespace kuasar
