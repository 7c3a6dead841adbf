#include <gtest/gtest.h>

#include "runtime/sandboxers/vmm/qemu/qemu_config.h"
#include "runtime/base/status_matchers.h"

namespace kuasar::vmm {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

absl::StatusOr<QemuConfig> Parse(std::string_view toml) {
  auto config = ParseConfig(toml, "kuasar.toml");
  if (!config.ok()) return config.status();
  return ParseQemuConfig(*config);
}

TEST(QemuConfigTest, DefaultsWithoutTheSection) {
  auto c = Parse("[sandboxer]\nkind = \"vmm\"\n");
  ASSERT_OK(c);
  EXPECT_EQ(c->qemu_path, "/usr/bin/qemu-system-x86_64");
  EXPECT_EQ(c->machine_type, "q35");
  EXPECT_EQ(c->accel, Accel::kAuto);
  EXPECT_EQ(c->share_fs, ShareFs::kVirtioFs);
  EXPECT_EQ(c->vcpus, 1);
  EXPECT_EQ(c->memory_in_mb, 512);
  EXPECT_EQ(c->pcie_root_ports, 2);
}

TEST(QemuConfigTest, KuasarKeysAndSpellings) {
  auto c = Parse(R"(
[hypervisor]
driver = "qemu"
qemu_path = "/opt/qemu"
kernel_path = "/k"
initrd_path = "/i"
kernel_params = "task.debug"
machine_type = "pc"
vcpus = 2
memory_in_mb = 1024
block_device_driver = "VirtioBlk"
share_fs = "Virtio9P"
use_vsock = false
accel = "tcg"
extra_args = ["-device", "virtio-rng-pci"]
)");
  ASSERT_OK(c);
  EXPECT_EQ(c->qemu_path, "/opt/qemu");
  EXPECT_EQ(c->kernel_path, "/k");
  EXPECT_EQ(c->machine_type, "pc");
  EXPECT_EQ(c->vcpus, 2);
  EXPECT_EQ(c->memory_in_mb, 1024);
  EXPECT_EQ(c->share_fs, ShareFs::kVirtio9p);
  EXPECT_EQ(c->accel, Accel::kTcg);
  EXPECT_EQ(c->extra_args.size(), 2u);
}

TEST(QemuConfigTest, KataAliases) {
  auto c = Parse("[hypervisor]\npath = \"/q\"\ndefault_vcpus = 3\ndefault_memory = 256\n");
  ASSERT_OK(c);
  EXPECT_EQ(c->qemu_path, "/q");
  EXPECT_EQ(c->vcpus, 3);
  EXPECT_EQ(c->memory_in_mb, 256);
}

TEST(QemuConfigTest, ErrorsNameTheKey) {
  EXPECT_THAT(Parse("[hypervisor]\nmachine_type = \"virt\"\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("kuasar.toml: hypervisor.machine_type")));
  EXPECT_THAT(Parse("[hypervisor]\nuse_vsock = true\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("virtio-serial")));
  EXPECT_THAT(Parse("[hypervisor]\nenable_vhost_vsock = true\n"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Parse("[hypervisor]\nhugepages = true\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("hugepages")));
  EXPECT_THAT(Parse("[hypervisor]\naccel = \"hvf\"\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("accel")));
  EXPECT_THAT(Parse("[hypervisor]\ndriver = \"cloud-hypervisor\"\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("driver")));
  EXPECT_THAT(Parse("[hypervisor]\nblock_device_driver = \"virtio-scsi\"\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("virtio-blk")));
  EXPECT_THAT(Parse("[hypervisor]\nvcpus = 0\n"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kuasar::vmm
