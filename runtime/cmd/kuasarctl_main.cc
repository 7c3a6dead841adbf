// kuasarctl: a small client of a sandboxer's gRPC sandbox API, for operators and scripts.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "runtime/client/sandbox_client.h"
#include "runtime/version.h"

namespace {

int Fail(const absl::Status& st) {
  std::fprintf(stderr, "kuasarctl: %s\n", st.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kuasarctl: talk to a kuasar sandboxer"};
  std::string address = "/run/kuasar/sandboxer.sock", id, netns;
  double timeout_s = 5;
  uint32_t stop_timeout = 0;
  app.add_option("-a,--address", address, "sandboxer socket");
  app.add_option("--timeout", timeout_s, "seconds to wait for the sandboxer");
  app.require_subcommand(1);
  auto* health = app.add_subcommand("health", "print version, platform and health; exit 1 if down");
  auto* status = app.add_subcommand("status", "print a sandbox's status as JSON");
  auto* create = app.add_subcommand("create", "create a sandbox (as containerd's Create)");
  create->add_option("--netns", netns, "network namespace path to join");
  auto* start = app.add_subcommand("start", "start a sandbox; prints its task address");
  auto* stop = app.add_subcommand("stop", "stop a sandbox");
  stop->add_option("--stop-timeout", stop_timeout, "grace seconds");
  auto* wait = app.add_subcommand("wait", "wait for a sandbox to exit; prints its exit status");
  auto* shutdown = app.add_subcommand("shutdown", "release everything of a sandbox");
  for (auto* c : {status, create, start, stop, wait, shutdown}) c->add_option("id", id)->required();
  CLI11_PARSE(app, argc, argv);

  kuasar::SandboxClient client(address);
  if (!client.WaitReady(absl::Seconds(timeout_s))) {
    std::fprintf(stderr, "kuasarctl: sandboxer at %s is not answering\n", address.c_str());
    return 1;
  }
  if (*health) {
    auto p = client.Platform("");
    if (!p.ok()) return Fail(p.status());
    std::printf("kuasarctl %s\nsandboxer: %s\nplatform: %s/%s\nhealth: SERVING\n",
                kuasar::kVersion, address.c_str(), p->os.c_str(), p->architecture.c_str());
    return 0;
  }
  if (*status) {
    auto s = client.Status(id, true);
    if (!s.ok()) return Fail(s.status());
    std::printf("%s\n", s->c_str());
    return 0;
  }
  if (*create) {
    containerd::services::sandbox::v1::ControllerCreateRequest req;
    req.set_sandbox_id(id);
    req.set_netns_path(netns);
    if (auto st = client.Create(req); !st.ok()) return Fail(st);
    return 0;
  }
  if (*start) {
    auto r = client.Start(id);
    if (!r.ok()) return Fail(r.status());
    std::printf("%s\n", r->address().c_str());
    return 0;
  }
  if (*stop) {
    auto st = client.Stop(id, stop_timeout);
    return st.ok() ? 0 : Fail(st);
  }
  if (*wait) {
    auto r = client.Wait(id);
    if (!r.ok()) return Fail(r.status());
    std::printf("%u\n", r->exit_status());
    return 0;
  }
  auto st = client.Shutdown(id);
  return st.ok() ? 0 : Fail(st);
}
