// containerd-shim-kuasar-vmm-v2: the one-shim-per-pod baseline (see vm_shim.h).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "runtime/base/id_check.h"
#include "runtime/base/logging.h"
#include "runtime/core/config.h"
#include "runtime/shim/bundle_info.h"
#include "runtime/shim/shim_launcher.h"
#include "runtime/shim/vm_shim.h"

using namespace kuasar;
using namespace kuasar::shim;

static int Fail(const absl::Status& st) {
  fprintf(stderr, "containerd-shim-kuasar-vmm-v2: %s\n", std::string(st.message()).c_str());
  return 1;
}

int main(int argc, char** argv) {
  auto args = ParseShimArgs(std::vector<std::string>(argv, argv + argc));
  if (!args.ok()) return Fail(args.status());
  if (args->action == "version") return printf("containerd-shim-kuasar-vmm-v2\n"), 0;
  if (args->bundle.empty()) args->bundle = std::filesystem::current_path().string();
  const char* env = getenv("KUASAR_SHIM_CONFIG");
  auto config = LoadConfig(env && *env ? env : "/etc/kuasar/vmm-shim.toml");
  if (!config.ok()) return Fail(config.status());
  ShimPaths paths{config->sandboxer.state_dir};

  if (args->action == "delete") {
    auto st = VmShim::Delete(*config, paths, args->id);  // a no-op for non-sandbox ids
    if (!st.ok()) return Fail(st);
    std::string out = EncodeDeleteResponse(0, 137);
    fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  }
  auto bundle = ReadBundleInfo(args->bundle, args->id);
  if (!bundle.ok()) return Fail(bundle.status());
  if (args->action == "start") {
    if (bundle->is_sandbox) {
      if (auto st = EnsurePrivateDirectory(paths.state_dir); !st.ok()) return Fail(st);
      auto st = LaunchShimDaemon(*args, args->bundle + "/shim.log", absl::Minutes(2));
      if (!st.ok()) return Fail(st);
    }
    printf("unix://%s\n", paths.SocketPath(bundle->sandbox_id).c_str());
    return 0;
  }
  KeepReadyFdPrivate(args->ready_fd);
  (void)InitLogging(args->debug ? "debug" : "info", "kuasar-vmm-shim");
  VmShim shim(*config, paths);
  absl::Status st = shim.Boot(*bundle);
  ReportReady(args->ready_fd, st);
  if (!st.ok()) {
    shim.Abort();
    return Fail(st);
  }
  return shim.Run();
}
