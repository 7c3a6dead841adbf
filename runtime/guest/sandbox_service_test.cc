// SandboxService against a fake system: what each mode may change, validation, and the
// ttrpc decode + dispatch path (DispatchSandboxUnary) the server and the fuzzer share.
#include "runtime/guest/sandbox_service.h"

#include <gtest/gtest.h>

#include "runtime/base/status_matchers.h"
#include "runtime/guest/sandbox_ttrpc.h"
#include "runtime/guest/testing/fake_guest_system.h"

namespace kuasar::guest {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::ElementsAre;
using testing::FakeGuestSystem;
using ::testing::HasSubstr;

SandboxServiceOptions Opts(GuestCapabilities caps) {
  SandboxServiceOptions o;
  o.caps = caps;
  o.etc_dir = "/state/etc";
  return o;
}

TEST(SandboxServiceTest, CheckReportsVersionKernelAndReadiness) {
  FakeGuestSystem sys;
  SandboxService svc(&sys, Opts({}));
  auto r = svc.Check({});
  ASSERT_OK(r);
  EXPECT_FALSE(r->agent_version().empty());
  EXPECT_FALSE(r->kernel_release().empty());
  EXPECT_GE(r->uptime_ns(), 0);
  EXPECT_EQ(r->ready_after_boot_ns(), 0);
  svc.MarkReady();
  EXPECT_GT(svc.Check({})->ready_after_boot_ns(), 0);
}

TEST(SandboxServiceTest, SetupInNoneModeWritesFilesOnly) {
  FakeGuestSystem sys;
  SandboxService svc(&sys, Opts({}));
  agentpb::SetupSandboxRequest req;
  req.set_sandbox_id("pod1");
  req.set_hostname("web-0");
  req.add_dns_servers("10.96.0.10");
  ASSERT_OK(svc.SetupSandbox(req));
  EXPECT_EQ(sys.hostname, "");  // the host's UTS namespace is not ours
  EXPECT_EQ(sys.files["/state/etc/hostname"], "web-0\n");
  EXPECT_THAT(sys.files["/state/etc/hosts"], HasSubstr("localhost"));
  EXPECT_EQ(sys.files["/state/etc/resolv.conf"], "nameserver 10.96.0.10\n");
  // Sysctls and links would be the host's: refused, nothing written.
  req.mutable_sysctls()->insert({"net.ipv4.ip_forward", "1"});
  EXPECT_THAT(svc.SetupSandbox(req), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(sys.sysctls.empty());
}

TEST(SandboxServiceTest, SetupInOwnNamespacesSetsEverything) {
  FakeGuestSystem sys;
  sys.links = {{"ens3", "52:54:00:00:00:01"}};
  SandboxService svc(&sys, Opts({.set_hostname = true, .configure_network = true}));
  agentpb::SetupSandboxRequest req;
  req.set_hostname("web-0");
  req.mutable_sysctls()->insert({"net.ipv4.ip_unprivileged_port_start", "0"});
  auto* i = req.add_interfaces();
  i->set_name("eth0");
  i->set_mac("52:54:00:00:00:01");
  ASSERT_OK(svc.SetupSandbox(req));
  EXPECT_EQ(sys.hostname, "web-0");
  EXPECT_EQ(sys.sysctls["/proc/sys/net/ipv4/ip_unprivileged_port_start"], "0");
  ASSERT_EQ(sys.commands.size(), 3u);  // down, rename, up
  EXPECT_THAT(sys.commands[1], ::testing::Contains("name"));
  // A host-wide sysctl is refused before anything is applied.
  req.mutable_sysctls()->insert({"vm.swappiness", "0"});
  sys.sysctls.clear();
  EXPECT_THAT(svc.SetupSandbox(req), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_TRUE(sys.sysctls.empty());
}

TEST(SandboxServiceTest, NetworkCommandFailureIsReportedExceptExistingAddress) {
  FakeGuestSystem sys;
  sys.links = {{"eth0", "52:54:00:00:00:01"}};
  sys.on_run = [](const CommandSpec& spec) -> absl::StatusOr<CommandResult> {
    CommandResult r;
    for (const auto& a : spec.argv) {
      if (a == "addr") {
        r.exit_code = 2;
        r.stderr_data = "RTNETLINK answers: File exists\n";
      }
      if (a == "route") {
        r.exit_code = 2;
        r.stderr_data = "RTNETLINK answers: Network is unreachable\n";
      }
    }
    return r;
  };
  SandboxService svc(&sys, Opts({.set_hostname = true, .configure_network = true}));
  agentpb::SetupSandboxRequest req;
  auto* i = req.add_interfaces();
  i->set_name("eth0");
  i->set_mac("52:54:00:00:00:01");
  auto* a = i->add_addresses();
  a->set_address("10.0.0.2");
  a->set_prefix_length(24);
  ASSERT_OK(svc.SetupSandbox(req));
  auto* r = req.add_routes();
  r->set_gateway("10.0.0.1");
  EXPECT_THAT(svc.SetupSandbox(req),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("Network is unreachable")));
}

TEST(SandboxServiceTest, SyncClockOnlyInAVmAndNeverBefore2020) {
  FakeGuestSystem sys;
  agentpb::SyncClockRequest req;
  req.set_unix_nanos(1500000000LL * 1000000000LL);  // 2017
  SandboxService shared(&sys, Opts({}));
  EXPECT_THAT(shared.SyncClock(req), StatusIs(absl::StatusCode::kInvalidArgument));
  req.set_unix_nanos(1700000000LL * 1000000000LL);
  ASSERT_OK(shared.SyncClock(req));
  EXPECT_EQ(sys.clock, absl::InfinitePast());  // the host's clock is not ours to set
  SandboxService vm(&sys, Opts({.set_clock = true}));
  ASSERT_OK(vm.SyncClock(req));
  EXPECT_EQ(sys.clock, absl::FromUnixSeconds(1700000000));
}

TEST(SandboxServiceTest, ExecVMProcessValidatesAndPassesThrough) {
  FakeGuestSystem sys;
  CommandSpec seen;
  sys.on_run = [&](const CommandSpec& spec) -> absl::StatusOr<CommandResult> {
    seen = spec;
    return CommandResult{3, "out", "err"};
  };
  SandboxService svc(&sys, Opts({}));
  agentpb::ExecVMProcessRequest req;
  EXPECT_THAT(svc.ExecVMProcess(req), StatusIs(absl::StatusCode::kInvalidArgument));
  req.add_args("/bin/true");
  req.add_env("A=1");
  auto r = svc.ExecVMProcess(req);
  ASSERT_OK(r);
  EXPECT_EQ(r->exit_code(), 3);
  EXPECT_EQ(r->stdout(), "out");
  EXPECT_EQ(r->stderr(), "err");
  EXPECT_THAT(seen.argv, ElementsAre("/bin/true"));
  EXPECT_THAT(*seen.env, ElementsAre("A=1"));
  EXPECT_EQ(seen.timeout, absl::Milliseconds(kDefaultExecTimeoutMs));
  req.add_env("NOEQUALS");
  EXPECT_THAT(svc.ExecVMProcess(req), StatusIs(absl::StatusCode::kInvalidArgument));
  req.clear_env();
  req.set_timeout_ms(-1);
  EXPECT_THAT(svc.ExecVMProcess(req), StatusIs(absl::StatusCode::kInvalidArgument));
  req.set_timeout_ms(0);
  req.add_args(std::string("a\0b", 3));
  EXPECT_THAT(svc.ExecVMProcess(req), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SandboxServiceTest, ShutdownStopsContainersThenAsksToExit) {
  FakeGuestSystem sys;
  std::vector<std::string> order;
  SandboxServiceOptions o = Opts({});
  o.stop_containers = [&] { order.push_back("stop"); };
  o.request_exit = [&] { order.push_back("exit"); };
  SandboxService svc(&sys, o);
  ASSERT_OK(svc.Shutdown({}));
  EXPECT_THAT(order, ElementsAre("stop", "exit"));
}

TEST(SandboxTtrpcTest, DispatchDecodesAndRoutes) {
  FakeGuestSystem sys;
  SandboxService svc(&sys, Opts({}));
  auto check = DispatchSandboxUnary(svc, "Check", "");
  ASSERT_OK(check);
  agentpb::CheckResponse resp;
  EXPECT_TRUE(resp.ParseFromString(*check));
  EXPECT_FALSE(resp.agent_version().empty());
  EXPECT_THAT(DispatchSandboxUnary(svc, "Nope", ""), StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_THAT(DispatchSandboxUnary(svc, "ExecVMProcess", "\xff\xff\xff"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("unmarshal")));
}

}  // namespace
}  // namespace kuasar::guest
