// vmm-task: the guest agent, PID 1 of a pod's VM (or of the fake VMM's namespaces).
// Flags in docs/guest-agent.md; everything else is in runtime/guest's library.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "runtime/base/logging.h"
#include "runtime/guest/agent.h"
#include "runtime/guest/guest_init.h"
#include "runtime/version.h"

namespace guest = kuasar::guest;

int main(int argc, char** argv) {
  // First, before any thread exists: every thread inherits the mask the signalfds need.
  guest::BlockAgentSignals();
  CLI::App app{"vmm-task: the kuasar guest agent (Task API + kuasar.agent.v1.Sandbox over ttrpc)"};
  guest::AgentOptions o;
  std::vector<std::string> listen;
  std::string init = "none";
  bool version = false;
  app.add_option("--listen", listen, "unix:PATH (socket 0600) or vsock:PORT; repeatable");
  app.add_option("--serve-fd", o.serve_fds, "serve an inherited, connected stream fd; repeatable");
  app.add_option("--serial", o.serial, "serve the virtio-serial port with this name; repeatable");
  app.add_option("--init", init, "vm | namespace | none")->capture_default_str();
  app.add_option("--runtime", o.runtime, "auto | crun | runc | PATH")->capture_default_str();
  app.add_option("--state-dir", o.state_dir, "runtime root and scratch")->capture_default_str();
  app.add_option("--log-level", o.log_level, "trace|debug|info|warn|error")->capture_default_str();
  app.add_option("--max-streams", o.max_streams, "concurrent stdio streams")->capture_default_str();
  app.add_flag("--version", version, "print the version and exit");
  // A VM's kernel hands init arguments it does not know; ignore what is not ours.
  app.allow_extras();
  CLI11_PARSE(app, argc, argv);
  if (version) {
    std::printf("vmm-task %s\n", kuasar::kVersion);
    return 0;
  }
  auto fail = [&](const absl::Status& st) {
    std::fprintf(stderr, "vmm-task: %s\n", std::string(st.message()).c_str());
    if (init == "vm") guest::PowerOff();  // PID 1 of a VM must not just exit
    return 2;
  };
  if (absl::Status st = kuasar::InitLogging(o.log_level, "vmm-task"); !st.ok()) return fail(st);
  for (const auto& extra : app.remaining()) spdlog::warn("op=args ignored=\"{}\"", extra);
  auto mode = guest::ParseInitMode(init);
  if (!mode.ok()) return fail(mode.status());
  o.init = *mode;
  for (const auto& spec : listen) {
    auto a = guest::ParseListenAddress(spec);
    if (!a.ok()) return fail(a.status());
    o.listen.push_back(*a);
  }
  if (absl::Status st = guest::InitGuest(o.init); !st.ok()) return fail(st);
  auto agent = guest::Agent::Start(o);
  if (!agent.ok()) return fail(agent.status());
  (*agent)->Run();
  agent->reset();
  if (o.init == guest::InitMode::kVm) guest::PowerOff();
  return 0;
}
