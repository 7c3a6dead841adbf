// kuasarctl: a small client of a sandboxer's gRPC sandbox API, for operators and scripts.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "runtime/client/sandbox_client.h"
#include "runtime/version.h"

int main(int argc, char** argv) {
  CLI::App app{"kuasarctl: talk to a kuasar sandboxer"};
  std::string address = "/run/kuasar/sandboxer.sock";
  double timeout_s = 5;
  app.add_option("-a,--address", address, "sandboxer socket");
  app.add_option("--timeout", timeout_s, "seconds to wait for the sandboxer");
  app.require_subcommand(1);
  auto* health = app.add_subcommand("health", "print version, platform and health; exit 1 if down");
  std::string id;
  auto* status = app.add_subcommand("status", "print a sandbox's status as JSON");
  status->add_option("id", id)->required();
  CLI11_PARSE(app, argc, argv);

  kuasar::SandboxClient client(address);
  if (!client.WaitReady(absl::Seconds(timeout_s))) {
    std::fprintf(stderr, "kuasarctl: sandboxer at %s is not answering\n", address.c_str());
    return 1;
  }
  if (*health) {
    auto p = client.Platform("");
    if (!p.ok()) {
      std::fprintf(stderr, "kuasarctl: %s\n", p.status().ToString().c_str());
      return 1;
    }
    std::printf("kuasarctl %s\nsandboxer: %s\nplatform: %s/%s\nhealth: SERVING\n",
                kuasar::kVersion, address.c_str(), p->os.c_str(), p->architecture.c_str());
    return 0;
  }
  auto s = client.Status(id, true);
  if (!s.ok()) {
    std::fprintf(stderr, "kuasarctl: %s\n", s.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", s->c_str());
  return 0;
}
