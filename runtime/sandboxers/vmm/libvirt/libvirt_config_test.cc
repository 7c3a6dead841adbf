#include <gtest/gtest.h>

#include "runtime/base/status_matchers.h"
#include "runtime/sandboxers/vmm/libvirt/libvirt_config.h"

namespace kuasar::vmm {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

absl::StatusOr<LibvirtConfig> Parse(std::string_view toml) {
  auto config = ParseConfig(toml, "kuasar.toml");
  if (!config.ok()) return config.status();
  return ParseLibvirtConfig(*config);
}

TEST(LibvirtConfigTest, Defaults) {
  auto c = Parse("[hypervisor]\ndriver = \"libvirt\"\n");
  ASSERT_OK(c);
  EXPECT_EQ(c->uri, "qemu:///system");
  EXPECT_EQ(c->qemu_path, "/usr/bin/qemu-system-x86_64");
  EXPECT_EQ(c->machine_type, "q35");
  EXPECT_EQ(c->accel, Accel::kAuto);
  EXPECT_EQ(c->share_fs, ShareFs::kVirtioFs);
  EXPECT_TRUE(c->run_as_root);
  EXPECT_EQ(c->vcpus, 1);
  EXPECT_EQ(c->memory_in_mb, 512);
}

TEST(LibvirtConfigTest, EveryKey) {
  auto c = Parse(R"(
[hypervisor]
driver = "libvirt"
uri = "qemu+unix:///system?socket=/run/x/libvirt-sock"
qemu_path = "/opt/qemu"
kernel_path = "/k"
initrd_path = "/i"
kernel_params = "task.debug"
machine_type = "pc"
accel = "tcg"
cpu_model = "Skylake-Client"
vcpus = 2
memory_in_mb = 1024
share_fs = "none"
virtiofs_daemon_path = "/usr/libexec/virtiofsd"
virtiofs_cache = "always"
run_as_root = false
debug = true
kvm_probe_timeout_ms = 2000
kvm_probe_cache = "/tmp/probe.json"
)");
  ASSERT_OK(c);
  EXPECT_EQ(c->uri, "qemu+unix:///system?socket=/run/x/libvirt-sock");
  EXPECT_EQ(c->qemu_path, "/opt/qemu");
  EXPECT_EQ(c->machine_type, "pc");
  EXPECT_EQ(c->accel, Accel::kTcg);
  EXPECT_EQ(c->cpu_model, "Skylake-Client");
  EXPECT_EQ(c->vcpus, 2);
  EXPECT_EQ(c->memory_in_mb, 1024);
  EXPECT_EQ(c->share_fs, ShareFs::kNone);
  EXPECT_EQ(c->virtiofs_cache, "always");
  EXPECT_FALSE(c->run_as_root);
  EXPECT_TRUE(c->debug);
  EXPECT_EQ(c->kvm_probe_timeout, absl::Seconds(2));
}

TEST(LibvirtConfigTest, RefusesWhatTheDriverCannotDo) {
  EXPECT_THAT(Parse("[hypervisor]\ndriver = \"qemu\"\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not libvirt")));
  EXPECT_THAT(Parse("[hypervisor]\ndriver = \"libvirt\"\nmachine_type = \"microvm\"\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("q35 or pc")));
  EXPECT_THAT(Parse("[hypervisor]\ndriver = \"libvirt\"\nshare_fs = \"virtio-9p\"\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("virtio-fs or none")));
  EXPECT_THAT(Parse("[hypervisor]\ndriver = \"libvirt\"\nuri = \"\"\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Parse("[hypervisor]\ndriver = \"libvirt\"\nvirtiofs_cache = \"auto\"\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Parse("[hypervisor]\ndriver = \"libvirt\"\npcie_root_ports = 2\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("pcie_root_ports")));
}

}  // namespace
}  // namespace kuasar::vmm
