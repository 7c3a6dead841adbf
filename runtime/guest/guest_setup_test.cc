// Validation and rendering of SetupSandbox's files, sysctls and network plan.
#include "runtime/guest/guest_setup.h"

#include <gtest/gtest.h>

#include "runtime/base/atomic_file.h"
#include "runtime/base/id_check.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/guest/agent_channels.h"
#include "runtime/guest/guest_init.h"
#include "runtime/guest/guest_network.h"

namespace kuasar::guest {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using agentpb = ::kuasar::agent::v1::SetupSandboxRequest;

TEST(GuestSetupTest, Hostnames) {
  EXPECT_OK(ValidateHostname("pod-1.example"));
  for (const char* bad : {"", ".a", "a.", "a..b", "a b", "a\nb", "x_y"}) {
    EXPECT_THAT(ValidateHostname(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
  EXPECT_THAT(ValidateHostname(std::string(65, 'a')), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(GuestSetupTest, HostsFile) {
  agentpb req;
  req.set_hostname("web");
  auto* iface = req.add_interfaces();
  auto* a = iface->add_addresses();
  a->set_address("10.88.0.7");
  a->set_prefix_length(16);
  req.add_hosts("10.0.0.1\tdb db.local");
  auto hosts = RenderHosts(req);
  ASSERT_OK(hosts);
  EXPECT_THAT(*hosts, HasSubstr("127.0.0.1\tlocalhost\n"));
  EXPECT_THAT(*hosts, HasSubstr("10.88.0.7\tweb\n"));
  EXPECT_THAT(*hosts, HasSubstr("10.0.0.1\tdb db.local\n"));
  req.add_hosts("evil\n127.0.0.1 x");
  EXPECT_THAT(RenderHosts(req), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(GuestSetupTest, ResolvConf) {
  agentpb req;
  EXPECT_EQ(*RenderResolvConf(req), "");
  req.add_dns_servers("10.96.0.10");
  req.add_dns_servers("fd00::a");
  req.add_dns_searches("ns.svc.cluster.local");
  req.add_dns_options("ndots:5");
  EXPECT_EQ(*RenderResolvConf(req),
            "nameserver 10.96.0.10\nnameserver fd00::a\nsearch ns.svc.cluster.local\n"
            "options ndots:5\n");
  req.add_dns_servers("not-an-ip");
  EXPECT_THAT(RenderResolvConf(req), StatusIs(absl::StatusCode::kInvalidArgument));
  agentpb bad;
  bad.add_dns_searches("a b");
  EXPECT_THAT(RenderResolvConf(bad), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(GuestSetupTest, OnlyNamespacedSysctls) {
  EXPECT_EQ(*SysctlPath("net.ipv4.ip_forward"), "/proc/sys/net/ipv4/ip_forward");
  EXPECT_EQ(*SysctlPath("net/ipv4/conf/eth0.100/forwarding"),
            "/proc/sys/net/ipv4/conf/eth0.100/forwarding");
  EXPECT_EQ(*SysctlPath("kernel.shm_rmid_forced"), "/proc/sys/kernel/shm_rmid_forced");
  EXPECT_EQ(*SysctlPath("kernel.sem"), "/proc/sys/kernel/sem");
  EXPECT_EQ(*SysctlPath("fs.mqueue.msg_max"), "/proc/sys/fs/mqueue/msg_max");
  for (const char* host_wide :
       {"kernel.panic", "vm.overcommit_memory", "fs.file-max", "kernel.semx"}) {
    EXPECT_THAT(SysctlPath(host_wide), StatusIs(absl::StatusCode::kPermissionDenied)) << host_wide;
  }
  for (const char* bad :
       {"", "net..ipv4", "net/../kernel/panic", "net.ipv4 x", "net/ipv4/", "../net"}) {
    EXPECT_THAT(SysctlPath(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
  EXPECT_OK(ValidateSysctlValue("1024\t65000"));
  EXPECT_THAT(ValidateSysctlValue("1\n2"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(GuestNetworkTest, PlansRenameMtuAddressesUpThenRoutes) {
  agentpb req;
  auto* iface = req.add_interfaces();
  iface->set_name("eth0");
  iface->set_mac("52:54:00:AB:CD:EF");
  iface->set_mtu(1450);
  auto* a = iface->add_addresses();
  a->set_address("10.88.0.7");
  a->set_prefix_length(16);
  auto* a6 = iface->add_addresses();
  a6->set_address("fd00::7");
  a6->set_prefix_length(64);
  a6->set_ipv6(true);
  auto* def = req.add_routes();
  def->set_gateway("10.88.0.1");
  def->set_device("eth0");
  auto* net = req.add_routes();
  net->set_destination("fd01::/64");
  net->set_device("eth0");
  std::vector<NetLink> links = {{"lo", "00:00:00:00:00:00"}, {"ens3", "52:54:00:ab:cd:ef"}};
  auto plan = PlanNetwork(req, links);
  ASSERT_OK(plan);
  using V = std::vector<std::string>;
  EXPECT_THAT(*plan,
              ElementsAre(V{"link", "set", "dev", "ens3", "down"},
                          V{"link", "set", "dev", "ens3", "name", "eth0"},
                          V{"link", "set", "dev", "eth0", "mtu", "1450"},
                          V{"addr", "add", "10.88.0.7/16", "dev", "eth0"},
                          V{"-f", "inet6", "addr", "add", "fd00::7/64", "dev", "eth0"},
                          V{"link", "set", "dev", "eth0", "up"},
                          V{"route", "replace", "default", "via", "10.88.0.1", "dev", "eth0"},
                          V{"-f", "inet6", "route", "replace", "fd01::/64", "dev", "eth0"}));
  EXPECT_TRUE(IsIdempotentAdd((*plan)[3]));
  EXPECT_FALSE(IsIdempotentAdd((*plan)[0]));
}

TEST(GuestNetworkTest, RefusesBadOrMissingLinks) {
  std::vector<NetLink> links = {{"eth0", "52:54:00:00:00:01"}, {"eth1", "52:54:00:00:00:02"}};
  auto one = [](const char* name, const char* mac) {
    agentpb req;
    auto* i = req.add_interfaces();
    i->set_name(name);
    i->set_mac(mac);
    return req;
  };
  EXPECT_THAT(PlanNetwork(one("eth0", "52:54:00:00:00:09"), links),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(PlanNetwork(one("eth1", "52:54:00:00:00:01"), links),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already exists")));
  EXPECT_THAT(PlanNetwork(one("a-name-that-is-too-long", "52:54:00:00:00:01"), links),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PlanNetwork(one("eth0", "52:54:00:00:00"), links),
              StatusIs(absl::StatusCode::kInvalidArgument));
  agentpb bad_addr = one("eth0", "52:54:00:00:00:01");
  auto* a = bad_addr.mutable_interfaces(0)->add_addresses();
  a->set_address("10.0.0.1");
  a->set_prefix_length(33);
  EXPECT_THAT(PlanNetwork(bad_addr, links), StatusIs(absl::StatusCode::kInvalidArgument));
  agentpb route;
  route.add_routes()->set_destination("10.0.0.0/8");
  EXPECT_THAT(PlanNetwork(route, links), StatusIs(absl::StatusCode::kInvalidArgument));
  route.mutable_routes(0)->set_gateway("fd00::1");  // v4 destination, v6 gateway
  EXPECT_THAT(PlanNetwork(route, links), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(GuestInitTest, KernelParameter) {
  std::string cmdline = "console=ttyS0 task.sharefs_type=virtiofs quiet task.debug\n";
  EXPECT_EQ(KernelParameter(cmdline, "task.sharefs_type"), "virtiofs");
  EXPECT_EQ(KernelParameter(cmdline, "task.debug"), "");
  EXPECT_EQ(KernelParameter(cmdline, "task.sharefs"), "");
  EXPECT_EQ(KernelParameter(cmdline, "console"), "ttyS0");
}

TEST(GuestInitTest, LoadKernelModulesSkipsMissingFiles) {
  EXPECT_EQ(LoadKernelModules("/nonexistent/modules"), 0);
}

TEST(AgentChannelsTest, FindsVirtioPortByName) {
  TempDir sysfs("kuasar-vport");
  for (auto [port, name] :
       {std::pair{"vport1p1", "console.0\n"}, std::pair{"vport1p2", "agent.channel.0\n"}}) {
    ASSERT_OK(EnsurePrivateDirectory(sysfs.Sub(port)));
    ASSERT_OK(WriteFileAtomically(sysfs.Sub(port) + "/name", name));
  }
  EXPECT_EQ(*FindVirtioPort("agent.channel.0", sysfs.path()), "/dev/vport1p2");
  EXPECT_THAT(FindVirtioPort("agent.channel.1", sysfs.path()),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace kuasar::guest
