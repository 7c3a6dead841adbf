#include "sim/common/machine_layout.h"

#include <gtest/gtest.h>

#include "runtime/base/status_matchers.h"

namespace kuasar::sim {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

absl::StatusOr<MachineLayout> Layout(QmpDialect d, std::vector<std::string> args) {
  auto cmd = TokenizeQemuCmdline(d, args, "qemu-system-x86_64");
  if (!cmd.ok()) return cmd.status();
  return BuildMachineLayout(d, *cmd, "qemu-system-x86_64", AgentConfig{}, false);
}

TEST(MachineLayoutTest, KataStyleQemuCommandLine) {
  auto l =
      Layout(QmpDialect::kQemu,
             {"-name",       "sandbox-1,debug-threads=on",
              "-machine",    "q35,accel=kvm",
              "-cpu",        "host",
              "-smp",        "2,cores=1",
              "-m",          "2048M,slots=10,maxmem=8G",
              "-kernel",     "/k",
              "-initrd",     "/i",
              "-append",     "console=hvc0 quiet",
              "-nodefaults", "-nographic",
              "-no-reboot",  "-S",
              "-qmp",        "unix:/run/q.sock,server=on,wait=off",
              "-chardev",    "socket,id=agent,path=/run/a.sock,server=on,wait=off",
              "-chardev",    "socket,id=con,path=/run/c.sock,server,nowait",
              "-device",     "virtio-serial-pci,id=serial0",
              "-device",     "virtserialport,chardev=agent,id=channel0,name=agent.channel.0",
              "-device",     "virtconsole,chardev=con,id=console0",
              "-fsdev",      "local,id=fs0,path=/run/shared,security_model=none",
              "-device",     "virtio-9p-pci,fsdev=fs0,mount_tag=kataShared",
              "-netdev",     "tap,id=net0,ifname=tap0,script=no,downscript=no",
              "-device",     "virtio-net-pci,netdev=net0,mac=02:00:00:00:00:01",
              "-object",     "memory-backend-file,id=mem,size=2048M,mem-path=/dev/shm,share=on",
              "-serial",     "none",
              "-monitor",    "none",
              "-enable-kvm", "-pidfile",
              "/run/pid"});
  ASSERT_OK(l);
  EXPECT_EQ(l->name, "sandbox-1");
  EXPECT_EQ(l->machine, "q35");
  EXPECT_EQ(l->vcpus, 2);
  EXPECT_EQ(l->memory_mib, 2048);
  EXPECT_TRUE(l->start_paused);
  ASSERT_EQ(l->qmp.size(), 1u);
  EXPECT_EQ(l->qmp[0].path, "/run/q.sock");
  EXPECT_FALSE(l->qmp[0].wait);
  EXPECT_EQ(l->agent_socket, "/run/a.sock");
  EXPECT_EQ(l->chardev_sockets.size(), 2u);
  EXPECT_EQ(l->shares, std::vector<std::string>{"kataShared=/run/shared"});
  EXPECT_EQ(l->pidfile, "/run/pid");
}

TEST(MachineLayoutTest, QmpOnAMonitorChardev) {
  auto l = Layout(QmpDialect::kQemu, {"-chardev", "socket,id=mon,path=/run/m.sock,server=on",
                                      "-mon", "chardev=mon,mode=control"});
  ASSERT_OK(l);
  ASSERT_EQ(l->qmp.size(), 1u);
  EXPECT_TRUE(l->qmp[0].wait);  // server=on without wait=off
  EXPECT_TRUE(l->chardev_sockets.empty());
}

TEST(MachineLayoutTest, QemuErrorTexts) {
  EXPECT_THAT(
      Layout(QmpDialect::kQemu, {"-foo"}),
      StatusIs(absl::StatusCode::kInvalidArgument, "qemu-system-x86_64: -foo: invalid option"));
  EXPECT_THAT(
      Layout(QmpDialect::kQemu, {"-m"}),
      StatusIs(absl::StatusCode::kInvalidArgument, "qemu-system-x86_64: -m: requires an argument"));
  EXPECT_THAT(Layout(QmpDialect::kQemu, {"-chardev", "socket,id=c,path=/x,server=on", "-device",
                                         "virtserialport,chardev=c"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("No 'virtio-serial-bus' bus found for device 'virtserialport'")));
  EXPECT_THAT(Layout(QmpDialect::kQemu,
                     {"-device", "virtio-serial-pci", "-device", "virtserialport,chardev=nope"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("Property 'virtserialport.chardev' can't find value 'nope'")));
  EXPECT_THAT(Layout(QmpDialect::kQemu, {"-device", "vhost-vsock-pci,id=v,guest-cid=3"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("vhost-vsock: failed to open vhost device")));
  EXPECT_THAT(Layout(QmpDialect::kQemu, {"-smp", "abc"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "qemu-system-x86_64: Parameter 'smp.cpus' expects integer"));
  EXPECT_THAT(Layout(QmpDialect::kQemu, {"-qmp", "unix:/x,server=on,bogus=1"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Invalid parameter 'bogus'")));
}

TEST(MachineLayoutTest, MissingKernelIsQemusError) {
  auto cmd = TokenizeQemuCmdline(QmpDialect::kQemu, {"-kernel", "/nonexistent/vmlinuz"}, "q");
  ASSERT_OK(cmd);
  EXPECT_THAT(BuildMachineLayout(QmpDialect::kQemu, *cmd, "q", AgentConfig{}, true),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "qemu: could not load kernel '/nonexistent/vmlinuz': No such file or "
                       "directory"));
}

TEST(MachineLayoutTest, KuasarStratoVirtCommandLine) {
  // vmm/sandbox/src/stratovirt/config.rs test_stratovirt_params, plus the agent port.
  auto l =
      Layout(QmpDialect::kStratoVirt,
             {"-name",      "sandbox-1",
              "-uuid",      "6e7b0e90-3b2e-4179-bc30-43d2b5b5964f",
              "-machine",   "virt",
              "-qmp",       "unix:/path/to/qmp.sock,server,nowait",
              "-kernel",    "/var/lib/kuasar/vmlinux.bin",
              "-initrd",    "/var/lib/kuasar/initrd",
              "-append",    "console=hvc0 console=hvc1 iommu=off debug panic=1 pcie_ports=native",
              "-smp",       "cpus=1",
              "-m",         "1024M",
              "-pidfile",   "/path/to/pid",
              "-D",         "/path/to/log",
              "-global",    "pcie-root-port.fast-unplug=1",
              "-daemonize", "-disable-seccomp",
              "-device",    "virtio-serial-device,id=vs",
              "-chardev",   "socket,id=ch,path=/run/a.sock,server,nowait",
              "-device",    "virtserialport,chardev=ch,id=port0,nr=1"});
  ASSERT_OK(l);
  EXPECT_EQ(l->vcpus, 1);
  EXPECT_EQ(l->memory_mib, 1024);
  EXPECT_TRUE(l->daemonize);
  EXPECT_EQ(l->log_file, "/path/to/log");
  // StratoVirt: the first socket-backed virtserialport when none carries the agent's name.
  EXPECT_EQ(l->agent_socket, "/run/a.sock");
  EXPECT_THAT(Layout(QmpDialect::kStratoVirt, {"-bogus"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "Found argument '-bogus' which wasn't expected, or isn't valid in this "
                       "context."));
}

}  // namespace
}  // namespace kuasar::sim
