// StratoVirt's command line and config: Kuasar's shape, microvm vs PCI machines, devices.
#include "runtime/sandboxers/vmm/stratovirt/sv_command_line.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_join.h"
#include "runtime/base/status_matchers.h"
#include "runtime/core/config.h"

namespace kuasar::vmm {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

VmConfig Vm() {
  VmConfig vm;
  vm.sandbox_id = "pod-1";
  vm.state_dir = "/run/k/pod-1";
  vm.socket_dir = "/run/k/s/0123";
  vm.vcpus = 2;
  vm.memory_mib = 256;
  vm.kernel_path = "/k/vmlinuz";
  vm.initrd_path = "/k/initrd";
  return vm;
}

std::string Joined(const SvConfig& c, const VmConfig& vm) {
  auto argv = BuildSvArgv(c, vm, SvPaths::For(vm));
  EXPECT_OK(argv);
  return argv.ok() ? absl::StrJoin(*argv, " ") : "";
}

TEST(SvCommandLineTest, MicrovmWithTheAgentPort) {
  SvConfig c;
  c.path = "/usr/bin/stratovirt";
  std::string a = Joined(c, Vm());
  EXPECT_THAT(a, HasSubstr("/usr/bin/stratovirt -name kuasar-pod-1 -machine microvm -smp cpus=2 "
                           "-m 256M -kernel /k/vmlinuz -initrd /k/initrd -append "));
  EXPECT_THAT(a, HasSubstr("-qmp unix:/run/k/s/0123/qmp.sock,server,nowait"));
  EXPECT_THAT(a, HasSubstr("-device virtio-serial-device,id=virtio-serial0 "));
  EXPECT_THAT(a,
              HasSubstr("-chardev socket,id=charagent,path=/run/k/s/0123/agent.sock,server,nowait "
                        "-device virtserialport,chardev=charagent,id=channel0,"
                        "name=agent.channel.0,nr=1"));
  EXPECT_THAT(a, ::testing::EndsWith("-disable-seccomp"));
  EXPECT_THAT(a, ::testing::Not(HasSubstr("pflash")));
}

TEST(SvCommandLineTest, PciMachineGetsSlotsAndFirmware) {
  SvConfig c;
  c.machine_type = "q35,mem-share=on";
  c.firmware = "/usr/share/edk2/ovmf/OVMF_CODE.fd";
  VmConfig vm = Vm();
  vm.disks = {{"data1", "/img", "raw", true}};
  vm.nets = {{"eth0", "tap0", "02:00:00:00:00:01"}};
  std::string a = Joined(c, vm);
  EXPECT_THAT(
      a, HasSubstr("-drive file=/usr/share/edk2/ovmf/OVMF_CODE.fd,if=pflash,unit=0,readonly=true"));
  EXPECT_THAT(a, HasSubstr("virtio-serial-pci,id=virtio-serial0,bus=pcie.0,addr=0x2"));
  EXPECT_THAT(a, HasSubstr("-drive id=data1,file=/img,readonly=on,format=raw "
                           "-device virtio-blk-pci,drive=data1,id=data1-blk,bus=pcie.0,addr=0x3"));
  EXPECT_THAT(a, HasSubstr("-netdev tap,id=eth0,ifname=tap0 -device virtio-net-pci,netdev=eth0,"
                           "id=eth0-net,mac=02:00:00:00:00:01,bus=pcie.0,addr=0x4"));
}

TEST(SvCommandLineTest, RefusesWhatItCannotExpress) {
  VmConfig vm = Vm();
  vm.shared_dir = SharedDir{"/x", "kuasar", false};
  EXPECT_THAT(BuildSvArgv(SvConfig(), vm, SvPaths::For(vm)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  vm = Vm();
  vm.disks = {{"d", "/a,b", "raw", false}};
  EXPECT_THAT(BuildSvArgv(SvConfig(), vm, SvPaths::For(vm)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("comma")));
  vm = Vm();
  vm.nets = {{"0bad", "tap0", ""}};
  EXPECT_THAT(BuildSvArgv(SvConfig(), vm, SvPaths::For(vm)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SvConfigTest, ParsesKuasarKeys) {
  auto config = ParseConfig(R"(
[hypervisor]
driver = "stratovirt"
path = "/usr/bin/stratovirt"
machine_type = "q35,mem-share=on"
kernel_path = "/var/lib/kuasar/vmlinux.bin"
image_path = ""
initrd_path = "/var/lib/kuasar/kuasar.initrd"
kernel_params = "task.log_level=debug"
firmware = "/usr/share/edk2/ovmf/OVMF_CODE.fd"
vcpus = 1
memory_in_mb = 1024
block_device_driver = "virtio-blk"
debug = true
enable_mem_prealloc = false
)");
  ASSERT_OK(config);
  auto sv = ParseSvConfig(*config);
  ASSERT_OK(sv);
  EXPECT_TRUE(SvMachineIsPci(*sv));
  EXPECT_EQ(sv->memory_in_mb, 1024);
  auto with_fs = ParseConfig("[hypervisor.virtiofsd_conf]\npath = \"/usr/bin/vhost_user_fs\"\n");
  ASSERT_OK(with_fs);
  EXPECT_THAT(ParseSvConfig(*with_fs),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not implemented")));
}

}  // namespace
}  // namespace kuasar::vmm
