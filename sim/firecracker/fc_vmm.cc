#include "sim/firecracker/fc_vmm.h"

#include <sys/stat.h>

#include <cstdio>
#include <memory>

#include "absl/strings/str_format.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/logging.h"
#include "sim/common/http_server.h"
#include "sim/common/rest_front.h"
#include "sim/common/vmm_context.h"
#include "sim/firecracker/fc_api.h"
#include "sim/firecracker/fc_cli.h"

namespace kuasar::sim::fc {

using nlohmann::json;

int RunFirecracker(const SimConfig& config, const std::vector<std::string>& args) {
  auto opts = ParseFcArgs(args);
  if (!opts.ok()) {
    std::fprintf(stderr, "%s\n", std::string(opts.status().message()).c_str());
    return kExitArgParsing;
  }
  if (opts->version) {
    std::printf("Firecracker v%s (kuasar-fake-vmm)\n", std::string(kFcVersion).c_str());
    return 0;
  }
  if (opts->help) {
    std::printf("firecracker (kuasar-fake-vmm): see docs/fake-vmm.md for the options simulated.\n");
    return 0;
  }
  if (!opts->log_path.empty()) {
    if (absl::Status st = RedirectStderr(opts->log_path); !st.ok()) {
      std::fprintf(stderr, "Failed to initialize logger: %s\n", std::string(st.message()).c_str());
      return 1;
    }
  }
  VmmContext ctx(config, opts->no_api ? opts->config_file : opts->api_sock);
  ctx.ModelStartup();
  std::unique_ptr<HybridVsock> vsock;
  GuestDetacher detacher{ctx.guest};
  FcApi::Hooks hooks;
  hooks.bind_vsock = [&](const json& v) -> absl::Status {
    std::string path = v["uds_path"];
    ctx.guest.SetVsockDevice(nullptr);
    vsock.reset();
    ctx.guest.UseVsock(DirName(path));
    auto l = HybridVsock::Listen(
        ctx.runtime.io(), path, [&](uint32_t port) { return ctx.guest.VsockPortPath(port); },
        /*replace_existing=*/false);
    if (!l.ok()) return l.status();
    vsock = std::move(*l);
    ctx.guest.SetVsockDevice(vsock.get());
    return absl::OkStatus();
  };
  FcApi api(ctx.guest, opts->id, config.check_files, hooks);
  ctx.guest.UseVsock(opts->no_api ? DirName(opts->config_file) : DirName(opts->api_sock));
  RestFront front(
      ctx.runtime.io(), ctx.injector, [&](const RestRequest& r) { return api.Dispatch(r); },
      [](const FaultRule& rule, const RestRequest& r) {
        return FcApi::Fault(
            rule.status ? rule.status : 400,
            rule.message.empty()
                ? absl::StrFormat("%s %s refused by fault injection", r.method, r.path)
                : rule.message);
      });
  std::unique_ptr<HttpServer> server;
  if (!opts->no_api) {
    HttpServerOptions ho;
    ho.server_name = "Firecracker API";
    ho.body_limit = opts->payload_limit;
    ho.replace_existing = false;  // Firecracker refuses a path in use
    ho.bad_request = [](std::string_view why) {
      return FcApi::Fault(400, absl::StrFormat("Malformed HTTP request: %s", why));
    };
    ho.too_large = [](size_t limit) {
      return FcApi::Fault(400, absl::StrFormat("Request payload with size larger than the limit "
                                               "of %d allowed by server.",
                                               limit));
    };
    auto s = HttpServer::Listen(ctx.runtime.io(), opts->api_sock, &front, ho);
    if (!s.ok()) {
      std::fprintf(stderr,
                   "Failed to open the API socket at: %s. Check that it is not already used.\n",
                   opts->api_sock.c_str());
      return 1;
    }
    server = std::move(*s);
  }
  ctx.guest.OnExit([&](const GuestExit& e) {
    spdlog::info("op=vmm-exit reason={}", e.clean ? "guest-shutdown" : "guest-crash");
    ctx.runtime.Exit(e.clean ? 0 : 1);
  });
  if (opts->boot_timer) {
    ctx.guest.OnAgentStarted([](double ms) {
      // Firecracker's boot-timer device log line, written when the guest's init pokes it.
      spdlog::info("Guest-boot-time = {:>8} us {:>6} ms", static_cast<int64_t>(ms * 1000),
                   static_cast<int64_t>(ms));
    });
  }
  ctx.runtime.OnTerminate([&](int) {
    ctx.guest.PowerOff();
    ctx.runtime.Exit(0);
  });
  ctx.injector.Arm();
  if (!opts->config_file.empty()) {
    auto text = ReadSmallFile(opts->config_file, 1 << 20);
    json cfg = text.ok() ? json::parse(*text, nullptr, false) : json();
    absl::Status st = !text.ok()           ? text.status()
                      : cfg.is_discarded() ? absl::InvalidArgumentError("invalid JSON")
                                           : api.ApplyConfigFile(cfg);
    if (!st.ok()) {
      std::fprintf(stderr, "Configuration for VMM from one single json failed: %s\n",
                   std::string(st.message()).c_str());
      return kExitBadConfiguration;
    }
  }
  return ctx.runtime.Run();
}

}  // namespace kuasar::sim::fc
