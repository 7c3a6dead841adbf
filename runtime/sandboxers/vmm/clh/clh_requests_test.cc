// The Cloud Hypervisor driver's config, command line and request bodies; every body is
// held against CH's published OpenAPI definitions (testdata/clh_schemas.json).
#include "runtime/sandboxers/vmm/clh/clh_requests.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/base/status_matchers.h"
#include "runtime/core/config.h"
#include "runtime/sandboxers/vmm/rest/testing/json_schema.h"

namespace kuasar::vmm {
namespace {

using ::kuasar::testing::StatusIs;
using nlohmann::json;
using ::testing::HasSubstr;
using testing::JsonSchemaSet;

const JsonSchemaSet& Schemas() {
  static const JsonSchemaSet* set = [] {
    auto s = JsonSchemaSet::Load(KUASAR_CLH_SCHEMAS);
    if (!s.ok()) abort();
    return new JsonSchemaSet(std::move(*s));
  }();
  return *set;
}

VmConfig FullVm() {
  VmConfig vm;
  vm.sandbox_id = "pod-1";
  vm.state_dir = "/run/k/pod-1";
  vm.socket_dir = "/run/k/s/0123456789abcdef";
  vm.vcpus = 2;
  vm.memory_mib = 256;
  vm.kernel_path = "/k/vmlinuz";
  vm.initrd_path = "/k/initrd";
  vm.kernel_params = "task.log_level=debug";
  vm.shared_dir = SharedDir{"/run/k/pod-1/shared", "kuasar", false};
  vm.nets = {{"eth0", "tap0", "aa:bb:cc:dd:ee:ff"}, {"eth1", "tap1", ""}};
  vm.disks = {{"rootfs1", "/dev/loop3", "raw", true}};
  return vm;
}

TEST(ClhRequestsTest, VmConfigCarriesTheVm) {
  ClhConfig config;
  config.kernel_params = "quiet";
  VmConfig vm = FullVm();
  RestVmmPaths paths = RestVmmPaths::For(vm, "cloud-hypervisor");
  auto c = BuildClhVmConfig(config, vm, paths);
  ASSERT_OK(c);
  EXPECT_EQ((*c)["cpus"], (json{{"boot_vcpus", 2}, {"max_vcpus", 2}}));
  EXPECT_EQ((*c)["memory"]["size"], 256ull << 20);
  EXPECT_EQ((*c)["memory"]["shared"], true);  // virtio-fs needs it
  EXPECT_EQ((*c)["payload"]["kernel"], "/k/vmlinuz");
  EXPECT_EQ((*c)["payload"]["initramfs"], "/k/initrd");
  std::string cmdline = (*c)["payload"]["cmdline"];
  EXPECT_THAT(cmdline, HasSubstr("console=ttyS0"));
  EXPECT_THAT(cmdline, HasSubstr("task.log_level=debug"));
  EXPECT_THAT(cmdline, HasSubstr("task.sharefs_type=virtiofs"));
  EXPECT_EQ((*c)["vsock"], (json{{"cid", 3}, {"socket", paths.vsock_socket}}));
  EXPECT_EQ((*c)["serial"], (json{{"mode", "File"}, {"file", "/run/k/pod-1/console.log"}}));
  ASSERT_EQ((*c)["net"].size(), 2u);
  EXPECT_EQ((*c)["net"][0], (json{{"id", "eth0"}, {"tap", "tap0"}, {"mac", "aa:bb:cc:dd:ee:ff"}}));
  EXPECT_FALSE((*c)["net"][1].contains("mac"));
  EXPECT_EQ((*c)["disks"][0],
            (json{{"id", "rootfs1"}, {"path", "/dev/loop3"}, {"readonly", true}}));
  EXPECT_EQ((*c)["fs"][0]["tag"], "kuasar");
  EXPECT_EQ((*c)["fs"][0]["socket"], paths.virtiofs_socket);
}

TEST(ClhRequestsTest, MinimalVmHasNoDeviceLists) {
  VmConfig vm = FullVm();
  vm.shared_dir.reset();
  vm.nets.clear();
  vm.disks.clear();
  auto c = BuildClhVmConfig(ClhConfig(), vm, RestVmmPaths::For(vm, "cloud-hypervisor"));
  ASSERT_OK(c);
  EXPECT_FALSE(c->contains("net"));
  EXPECT_FALSE(c->contains("disks"));
  EXPECT_FALSE(c->contains("fs"));
  EXPECT_EQ((*c)["memory"]["shared"], false);
}

TEST(ClhRequestsTest, EveryBodyMatchesTheOpenApiSchema) {
  VmConfig vm = FullVm();
  ClhConfig config;
  config.hugepages = true;
  auto c = BuildClhVmConfig(config, vm, RestVmmPaths::For(vm, "cloud-hypervisor"));
  ASSERT_OK(c);
  EXPECT_OK(Schemas().Validate("VmConfig", *c));
  vm.shared_dir.reset();
  vm.nets.clear();
  vm.disks.clear();
  c = BuildClhVmConfig(config, vm, RestVmmPaths::For(vm, "cloud-hypervisor"));
  ASSERT_OK(c);
  EXPECT_OK(Schemas().Validate("VmConfig", *c));
  auto disk = ClhDiskConfig({"d1", "/img", "qcow2", false});
  ASSERT_OK(disk);
  EXPECT_OK(Schemas().Validate("DiskConfig", *disk));
  auto net = ClhNetConfig({"n1", "tap9", "02:00:00:00:00:01"});
  ASSERT_OK(net);
  EXPECT_OK(Schemas().Validate("NetConfig", *net));
  EXPECT_OK(Schemas().Validate("VmRemoveDevice", ClhRemoveDevice("n1")));
}

TEST(ClhRequestsTest, SchemaCheckCatchesWhatCloudHypervisorWouldRefuse) {
  VmConfig vm = FullVm();
  auto c = BuildClhVmConfig(ClhConfig(), vm, RestVmmPaths::For(vm, "cloud-hypervisor"));
  ASSERT_OK(c);
  json no_queues = *c;
  no_queues["fs"][0].erase("num_queues");  // FsConfig requires it
  EXPECT_THAT(Schemas().Validate("VmConfig", no_queues),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_queues")));
  json low_cid = *c;
  low_cid["vsock"]["cid"] = 2;
  EXPECT_THAT(Schemas().Validate("VmConfig", low_cid),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("minimum")));
  json typo = *c;
  typo["memory"]["sized"] = 1;
  EXPECT_THAT(Schemas().Validate("VmConfig", typo),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("VmConfig.memory.sized")));
  json bad_mode = *c;
  bad_mode["serial"]["mode"] = "file";
  EXPECT_FALSE(Schemas().Validate("VmConfig", bad_mode).ok());
}

TEST(ClhRequestsTest, ReadsVmInfoAndPing) {
  json info = {{"config", {{"payload", {{"kernel", "/k"}}}}}, {"state", "Running"}};
  EXPECT_OK(Schemas().Validate("VmInfo", info));
  auto state = ClhVmState(info);
  ASSERT_OK(state);
  EXPECT_EQ(*state, "Running");
  EXPECT_THAT(ClhVmState(json{{"config", json::object()}}), StatusIs(absl::StatusCode::kInternal));
  EXPECT_OK(Schemas().Validate("VmmPingResponse", json{{"version", "v40.0"}, {"pid", 7}}));
}

TEST(ClhRequestsTest, DeviceChecks) {
  EXPECT_THAT(ClhDiskConfig({"_disk0", "/img", "raw", false}),
              StatusIs(absl::StatusCode::kInvalidArgument));  // CH's own id space
  EXPECT_THAT(ClhDiskConfig({"d", "/img", "vmdk", false}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ClhNetConfig({"n", "", ""}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CheckClhDeviceId(std::string(33, 'a')), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ClhRequestsTest, ArgvIsApiSocketOnly) {
  ClhConfig config;
  config.path = "/opt/clh";
  VmConfig vm = FullVm();
  RestVmmPaths paths = RestVmmPaths::For(vm, "cloud-hypervisor");
  EXPECT_THAT(BuildClhArgv(config, vm, paths),
              ::testing::ElementsAre("/opt/clh", "--api-socket", "path=" + paths.api_socket));
  vm.debug = true;
  EXPECT_EQ(BuildClhArgv(config, vm, paths).back(), "-v");
  EXPECT_EQ(paths.api_socket, "/run/k/s/0123456789abcdef/api.sock");
  EXPECT_EQ(paths.vmm_log, "/run/k/pod-1/cloud-hypervisor.log");
}

TEST(ClhConfigTest, ParsesKuasarConfigClhToml) {
  // Kuasar's vmm/sandbox/config_clh.toml, image_path emptied (no root disk image here).
  auto config = ParseConfig(R"(
[hypervisor]
driver = "cloud-hypervisor"
path = "/usr/local/bin/cloud-hypervisor"
vcpus = 2
memory_in_mb = 1024
kernel_path = "/var/lib/kuasar/vmlinux.bin"
image_path = ""
initrd_path = "/var/lib/kuasar/initrd"
kernel_params = "task.debug"
hugepages = false
entropy_source = "/dev/urandom"
debug = false
[hypervisor.task]
debug = true
enable_tracing = false
[hypervisor.virtiofsd]
path = "/usr/local/bin/virtiofsd"
log_level = "info"
cache = "never"
thread_pool_size = 4
syslog = true
)");
  ASSERT_OK(config);
  auto clh = ParseClhConfig(*config);
  ASSERT_OK(clh);
  EXPECT_EQ(clh->vcpus, 2);
  EXPECT_EQ(clh->memory_in_mb, 1024);
  EXPECT_TRUE(clh->debug);  // [hypervisor.task] debug
  EXPECT_EQ(clh->virtiofsd_path, "/usr/local/bin/virtiofsd");
  EXPECT_EQ(clh->virtiofs_cache, "never");
  EXPECT_THAT(clh->virtiofsd_extra_args,
              ::testing::ElementsAre("--thread-pool-size=4", "--syslog"));
}

TEST(ClhConfigTest, RejectsWhatItCannotDo) {
  auto parse = [](const std::string& text) -> absl::Status {
    auto config = ParseConfig(text);
    if (!config.ok()) return config.status();
    return ParseClhConfig(*config).status();
  };
  EXPECT_THAT(parse("[hypervisor]\nimage_path = \"/kuasar.img\"\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("hypervisor.image_path")));
  EXPECT_THAT(parse("[hypervisor]\nvcpu = 1\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vcpu")));
  EXPECT_THAT(parse("[hypervisor]\ndriver = \"qemu\"\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("driver")));
  EXPECT_THAT(parse("[hypervisor]\nmemory_in_mb = 8\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("memory_in_mb")));
  EXPECT_THAT(parse("[hypervisor.virtiofsd]\ncache = \"sometimes\"\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cache")));
  EXPECT_OK(parse(""));
}

}  // namespace
}  // namespace kuasar::vmm
