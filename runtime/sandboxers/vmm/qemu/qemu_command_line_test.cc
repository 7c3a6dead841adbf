#include <algorithm>

#include <gtest/gtest.h>

#include "runtime/sandboxers/vmm/qemu/qemu_command_line.h"
#include "absl/strings/match.h"
#include "runtime/base/status_matchers.h"

namespace kuasar::vmm {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

// Every value given after `flag`.
std::vector<std::string> ValuesOf(const std::vector<std::string>& argv, std::string_view flag) {
  std::vector<std::string> out;
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == flag) out.push_back(argv[i + 1]);
  }
  return out;
}

VmConfig TestVm() {
  VmConfig vm;
  vm.sandbox_id = "pod1";
  vm.state_dir = "/run/k/sandboxes/pod1";
  vm.socket_dir = "/run/k/s/0123";
  vm.kernel_path = "/g/vmlinuz";
  vm.initrd_path = "/g/initramfs.img";
  vm.vcpus = 2;
  vm.memory_mib = 256;
  return vm;
}

class CommandLineTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::vector<std::string>> Build(Accel accel = Accel::kTcg) {
    return BuildQemuCommandLine(config_, vm_, QemuPaths::For(vm_), accel);
  }
  QemuConfig config_;
  VmConfig vm_ = TestVm();
};

TEST_F(CommandLineTest, Q35UnderTcg) {
  auto argv = Build();
  ASSERT_OK(argv);
  EXPECT_EQ((*argv)[0], "/usr/bin/qemu-system-x86_64");
  EXPECT_EQ(ValuesOf(*argv, "-machine"), std::vector<std::string>{"q35,accel=tcg"});
  EXPECT_TRUE(ValuesOf(*argv, "-cpu").empty());  // QEMU's default model under TCG
  EXPECT_EQ(ValuesOf(*argv, "-smp")[0], "2");
  EXPECT_EQ(ValuesOf(*argv, "-m")[0], "256M");
  for (const char* flag : {"-nodefaults", "-no-user-config", "-no-reboot"}) {
    EXPECT_THAT(*argv, Contains(flag));
  }
  EXPECT_EQ(ValuesOf(*argv, "-display")[0], "none");
  EXPECT_EQ(ValuesOf(*argv, "-kernel")[0], "/g/vmlinuz");
  EXPECT_EQ(ValuesOf(*argv, "-initrd")[0], "/g/initramfs.img");
  std::string append = ValuesOf(*argv, "-append")[0];
  EXPECT_THAT(append, HasSubstr("console=ttyS0"));
  EXPECT_THAT(append, HasSubstr("panic=-1"));
  EXPECT_THAT(append, Not(HasSubstr("sharefs")));
  auto chardevs = ValuesOf(*argv, "-chardev");
  EXPECT_THAT(chardevs, Contains("file,id=console0,path=/run/k/sandboxes/pod1/console.log"));
  EXPECT_THAT(chardevs, Contains("socket,id=qmp0,path=/run/k/s/0123/qmp.sock,server=on,wait=off"));
  EXPECT_THAT(chardevs,
              Contains("socket,id=agent0,path=/run/k/s/0123/agent.sock,server=on,wait=off"));
  auto devices = ValuesOf(*argv, "-device");
  EXPECT_THAT(devices, Contains("virtio-serial-pci,id=vserial0"));
  EXPECT_THAT(devices, Contains("virtserialport,bus=vserial0.0,chardev=agent0,"
                                "name=agent.channel.0,id=agent-channel0"));
  EXPECT_THAT(devices, Contains("pcie-root-port,id=hp0,bus=pcie.0,chassis=1"));
  EXPECT_THAT(devices, Contains("pcie-root-port,id=hp1,bus=pcie.0,chassis=2"));
  EXPECT_EQ(ValuesOf(*argv, "-mon")[0], "chardev=qmp0,mode=control");
  EXPECT_EQ(ValuesOf(*argv, "-serial")[0], "chardev:console0");
  EXPECT_EQ(ValuesOf(*argv, "-pidfile")[0], "/run/k/sandboxes/pod1/qemu.pid");
  EXPECT_TRUE(ValuesOf(*argv, "-global").empty());
  EXPECT_EQ(HotplugBuses(config_), (std::vector<std::string>{"hp0", "hp1"}));
}

TEST_F(CommandLineTest, KvmUsesTheHostCpu) {
  auto argv = Build(Accel::kKvm);
  ASSERT_OK(argv);
  EXPECT_EQ(ValuesOf(*argv, "-machine")[0], "q35,accel=kvm");
  EXPECT_EQ(ValuesOf(*argv, "-cpu")[0], "host");
  EXPECT_EQ(ValuesOf(*argv, "-global")[0], "kvm-pit.lost_tick_policy=discard");
  config_.cpu_model = "max";
  EXPECT_EQ(ValuesOf(*Build(Accel::kKvm), "-cpu")[0], "max");
  EXPECT_THAT(Build(Accel::kAuto), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(CommandLineTest, MachineTypes) {
  config_.machine_type = "microvm";
  auto argv = Build();
  ASSERT_OK(argv);
  EXPECT_EQ(ValuesOf(*argv, "-machine")[0], "microvm,accel=tcg,pcie=on");
  EXPECT_FALSE(MachineCanHotplug(config_));
  EXPECT_TRUE(HotplugBuses(config_).empty());
  for (const auto& d : ValuesOf(*argv, "-device")) EXPECT_THAT(d, Not(HasSubstr("root-port")));
  config_.machine_type = "pc";
  config_.machine_accelerators = "kernel_irqchip=on";
  EXPECT_EQ(ValuesOf(*Build(), "-machine")[0], "pc,accel=tcg,kernel_irqchip=on");
  EXPECT_EQ(HotplugBuses(config_), std::vector<std::string>{""});
}

TEST_F(CommandLineTest, VirtiofsShareNeedsSharedMemory) {
  vm_.shared_dir = SharedDir{"/run/k/sandboxes/pod1/shared", "kuasar", false};
  auto argv = Build();
  ASSERT_OK(argv);
  EXPECT_EQ(ValuesOf(*argv, "-machine")[0], "q35,accel=tcg,memory-backend=mem");
  EXPECT_EQ(ValuesOf(*argv, "-object")[0], "memory-backend-memfd,id=mem,size=256M,share=on");
  EXPECT_THAT(ValuesOf(*argv, "-chardev"),
              Contains("socket,id=vfs0,path=/run/k/s/0123/virtiofs.sock"));
  EXPECT_THAT(ValuesOf(*argv, "-device"),
              Contains("vhost-user-fs-pci,chardev=vfs0,tag=kuasar,queue-size=1024"));
  EXPECT_THAT(ValuesOf(*argv, "-append")[0], HasSubstr("task.sharefs_type=virtiofs"));
}

TEST_F(CommandLineTest, NinePShare) {
  config_.share_fs = ShareFs::kVirtio9p;
  vm_.shared_dir = SharedDir{"/srv/share", "kuasar", true};
  auto argv = Build();
  ASSERT_OK(argv);
  EXPECT_EQ(ValuesOf(*argv, "-fsdev")[0],
            "local,id=fsdev0,path=/srv/share,security_model=none,multidevs=remap,readonly=on");
  EXPECT_THAT(ValuesOf(*argv, "-device"), Contains("virtio-9p-pci,fsdev=fsdev0,mount_tag=kuasar"));
  EXPECT_TRUE(ValuesOf(*argv, "-object").empty());
  EXPECT_THAT(ValuesOf(*argv, "-append")[0], HasSubstr("task.sharefs_type=9p"));
  config_.share_fs = ShareFs::kNone;
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("share_fs")));
}

TEST_F(CommandLineTest, CommasInPathsCannotInjectOptions) {
  vm_.socket_dir = "/tmp/a,server=off";
  auto argv = Build();
  ASSERT_OK(argv);
  EXPECT_THAT(ValuesOf(*argv, "-chardev"),
              Contains("socket,id=qmp0,path=/tmp/a,,server=off/qmp.sock,server=on,wait=off"));
}

TEST_F(CommandLineTest, NetsAndDisks) {
  vm_.nets.push_back({"eth0", "tap0", "52:54:00:12:34:56"});
  vm_.disks.push_back({"rootfs", "/var/lib/x.img", "raw", true});
  auto argv = Build();
  ASSERT_OK(argv);
  EXPECT_EQ(ValuesOf(*argv, "-netdev")[0],
            "tap,id=netdev-eth0,ifname=tap0,script=no,downscript=no");
  EXPECT_THAT(ValuesOf(*argv, "-device"),
              Contains("virtio-net-pci,netdev=netdev-eth0,id=eth0,mac=52:54:00:12:34:56"));
  auto node = nlohmann::json::parse(ValuesOf(*argv, "-blockdev")[0]);
  EXPECT_EQ(node["node-name"], "drive-rootfs");
  EXPECT_EQ(node["read-only"], true);
  EXPECT_EQ(node["file"]["driver"], "file");
  EXPECT_EQ(node["file"]["filename"], "/var/lib/x.img");
  EXPECT_THAT(ValuesOf(*argv, "-device"), Contains("virtio-blk-pci,drive=drive-rootfs,id=rootfs"));
}

TEST_F(CommandLineTest, RejectsBadDevices) {
  vm_.nets = {{"0bad", "tap0", ""}};
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("0bad")));
  vm_.nets = {{"eth0", "tap0,script=/x", ""}};
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tap")));
  vm_.nets = {{"eth0", "tap0", "52:54:00:12:34"}};
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("MAC")));
  vm_.nets.clear();
  vm_.disks = {{"d", "relative.img", "raw", false}};
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("absolute")));
  vm_.disks = {{"d", "/x.img", "vmdk", false}};
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("qcow2")));
  vm_.disks.clear();
  vm_.memory_mib = 16;
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("64 MiB")));
}

TEST_F(CommandLineTest, KernelParamsAndExtraArgs) {
  config_.kernel_params = "console=hvc0 task.log_level=debug";
  config_.extra_args = {"-device", "virtio-rng-pci"};
  vm_.kernel_params = "foo=bar";
  auto argv = Build();
  ASSERT_OK(argv);
  std::string append = ValuesOf(*argv, "-append")[0];
  EXPECT_THAT(append, HasSubstr("console=hvc0"));
  EXPECT_THAT(append, Not(HasSubstr("console=ttyS0")));
  EXPECT_THAT(append, HasSubstr("task.log_level=debug"));
  EXPECT_THAT(append, HasSubstr("foo=bar"));
  EXPECT_EQ(argv->back(), "virtio-rng-pci");
  EXPECT_EQ((*argv)[argv->size() - 2], "-device");
}

}  // namespace
}  // namespace kuasar::vmm
