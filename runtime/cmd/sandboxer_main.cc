// kuasar-sandboxer: the resident sandboxer daemon (one per sandbox kind on a node).
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <spdlog/spdlog.h>

#include "runtime/base/logging.h"
#include "runtime/core/config.h"
#include "runtime/server/sandboxer_daemon.h"
#include "runtime/version.h"

int main(int argc, char** argv) {
  CLI::App app{"kuasar-sandboxer: containerd sandboxer for runc, vmm, wasm and appkernel pods"};
  std::string config_path = "/etc/kuasar/sandboxer.toml";
  std::string kind, listen, state_dir, log_level;
  bool version = false;
  app.add_option("-c,--config", config_path, "TOML config file");
  app.add_option("--kind", kind, "override [sandboxer] kind");
  app.add_option("--listen", listen, "override [sandboxer] listen");
  app.add_option("--state-dir", state_dir, "override [sandboxer] state_dir");
  app.add_option("--log-level", log_level, "override [sandboxer] log_level");
  app.add_flag("--version", version, "print the version and exit");
  CLI11_PARSE(app, argc, argv);
  if (version) {
    std::printf("kuasar-sandboxer %s\n", kuasar::kVersion);
    return 0;
  }

  absl::StatusOr<kuasar::Config> config = kuasar::LoadConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "kuasar-sandboxer: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  if (!kind.empty()) config->sandboxer.kind = kind;
  if (!listen.empty()) config->sandboxer.listen = listen;
  if (!state_dir.empty()) config->sandboxer.state_dir = state_dir;
  if (!log_level.empty()) config->sandboxer.log_level = log_level;
  if (absl::Status st = kuasar::InitLogging(config->sandboxer.log_level); !st.ok()) {
    std::fprintf(stderr, "kuasar-sandboxer: %s\n", std::string(st.message()).c_str());
    return 2;
  }

  // Block the stop signals in every thread; the main thread takes them with sigwait.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto daemon = kuasar::SandboxerDaemon::Start(*config);
  if (!daemon.ok()) {
    spdlog::critical("op=start error=\"{}\"", daemon.status().message());
    return 1;
  }
  spdlog::info("op=ready version={} pid={}", kuasar::kVersion, ::getpid());
  int sig = 0;
  sigwait(&stop, &sig);
  spdlog::info("op=signal sig={}", sig);
  (*daemon)->Shutdown();
  return 0;
}
