#include "sim/clh/clh_vmm.h"

#include <cstdio>
#include <memory>

#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "sim/clh/clh_api.h"
#include "sim/clh/clh_cli.h"
#include "sim/common/http_server.h"
#include "sim/common/rest_front.h"
#include "sim/common/vmm_context.h"

namespace kuasar::sim::clh {

using nlohmann::json;

int RunCloudHypervisor(const SimConfig& config, const std::vector<std::string>& args) {
  auto opts = ParseClhArgs(args);
  if (!opts.ok()) {
    bool usage = absl::IsInvalidArgument(opts.status());
    std::fprintf(stderr, "%s%s\n", usage ? "" : "Error parsing config: ",
                 std::string(opts.status().message()).c_str());
    return usage ? 2 : 1;
  }
  if (opts->version) {
    std::printf("cloud-hypervisor v%s-0-kuasar-fake-vmm\n", std::string(kClhVersion).c_str());
    return 0;
  }
  if (opts->help) {
    std::printf(
        "Launch a cloud-hypervisor VMM (kuasar-fake-vmm).\n\nUsage: cloud-hypervisor "
        "[OPTIONS]\n\nSee docs/fake-vmm.md for the options simulated.\n");
    return 0;
  }
  if (opts->api_fd >= 0) {
    std::fprintf(stderr, "Error: --api-socket fd= is not simulated; use path=\n");
    return 1;
  }
  if (!opts->log_file.empty()) {
    if (absl::Status st = RedirectStderr(opts->log_file); !st.ok()) {
      std::fprintf(stderr, "Error: %s\n", std::string(st.message()).c_str());
      return 1;
    }
  }
  if (opts->api_socket.empty() && !opts->vm_config) {
    // The real VMM would just sit there; say so rather than hang silently.
    spdlog::warn("op=start note=\"no --api-socket and no payload: nothing to serve\"");
  }
  VmmContext ctx(config, opts->api_socket);
  ctx.ModelStartup();
  std::unique_ptr<HybridVsock> vsock;
  GuestDetacher detacher{ctx.guest};
  auto bind_vsock = [&](const json& v) -> absl::Status {
    std::string path = v.value("socket", "");
    ctx.guest.UseVsock(DirName(path));
    auto listener = HybridVsock::Listen(
        ctx.runtime.io(), path, [&](uint32_t port) { return ctx.guest.VsockPortPath(port); },
        /*replace_existing=*/false);
    if (!listener.ok()) return listener.status();
    vsock = std::move(*listener);
    ctx.guest.SetVsockDevice(vsock.get());
    return absl::OkStatus();
  };
  ClhApi::Hooks hooks;
  hooks.before_boot = [&](const json& c) -> absl::Status {
    if (c.contains("vsock") && c["vsock"].is_object()) return bind_vsock(c["vsock"]);
    ctx.guest.UseVsock(DirName(opts->api_socket));
    return absl::OkStatus();
  };
  hooks.add_vsock = bind_vsock;
  hooks.after_power_off = [&] {
    ctx.guest.SetVsockDevice(nullptr);
    vsock.reset();
  };
  hooks.exit_vmm = [&] { ctx.runtime.Exit(0); };
  ClhApi api(ctx.guest, config.check_files, hooks);
  RestFront front(
      ctx.runtime.io(), ctx.injector, [&](const RestRequest& r) { return api.Dispatch(r); },
      [](const FaultRule& rule, const RestRequest& r) {
        std::string msg = rule.message.empty() ? absl::StrFormat("%s %s refused by fault injection",
                                                                 r.method, r.path)
                                               : rule.message;
        return ClhApi::Error(rule.status ? rule.status : 500, {"Error from API", msg});
      });
  std::unique_ptr<HttpServer> server;
  if (!opts->api_socket.empty()) {
    HttpServerOptions ho;
    ho.server_name = "Cloud Hypervisor API";
    ho.bad_request = [](std::string_view) { return RestReply{400, "", nullptr}; };
    auto s = HttpServer::Listen(ctx.runtime.io(), opts->api_socket, &front, ho);
    if (!s.ok()) {
      std::fprintf(stderr, "Error: Failed to start the API server: %s\n",
                   std::string(s.status().message()).c_str());
      return 1;
    }
    server = std::move(*s);
  }
  ctx.guest.OnExit([&](const GuestExit& e) {
    spdlog::info("op=vmm-exit reason={}", e.clean ? "guest-poweroff" : "guest-crash");
    ctx.runtime.Exit(e.clean ? 0 : 1);
  });
  ctx.runtime.OnTerminate([&](int sig) {
    spdlog::info("op=vmm-exit reason=signal signal={}", sig);
    ctx.guest.PowerOff();
    ctx.runtime.Exit(0);
  });
  ctx.injector.Arm();
  if (opts->vm_config) {
    RestReply r = api.Dispatch({"PUT", "/api/v1/vm.create", opts->vm_config->dump()});
    if (r.status == 204) r = api.Dispatch({"PUT", "/api/v1/vm.boot", ""});
    if (r.status != 204) {
      std::fprintf(stderr, "Error booting VM: %s\n", r.body.c_str());
      return 1;
    }
  }
  return ctx.runtime.Run();
}

}  // namespace kuasar::sim::clh
