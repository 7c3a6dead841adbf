// The Firecracker driver's config, command line and request bodies; every body is held
// against Firecracker's published swagger definitions (testdata/fc_schemas.json).
#include "runtime/sandboxers/vmm/firecracker/fc_requests.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

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
    auto s = JsonSchemaSet::Load(KUASAR_FC_SCHEMAS);
    if (!s.ok()) abort();
    return new JsonSchemaSet(std::move(*s));
  }();
  return *set;
}

// The swagger definition each pre-boot path takes.
std::string DefinitionFor(const std::string& path) {
  if (path == "/machine-config") return "MachineConfiguration";
  if (path == "/boot-source") return "BootSource";
  if (path == "/vsock") return "Vsock";
  if (path.rfind("/drives/", 0) == 0) return "Drive";
  if (path.rfind("/network-interfaces/", 0) == 0) return "NetworkInterface";
  return "";
}

VmConfig Vm() {
  VmConfig vm;
  vm.sandbox_id = "pod-1";
  vm.state_dir = "/run/k/pod-1";
  vm.socket_dir = "/run/k/s/0123456789abcdef";
  vm.vcpus = 2;
  vm.memory_mib = 256;
  vm.kernel_path = "/k/vmlinuz";
  vm.initrd_path = "/k/initrd";
  vm.nets = {{"eth0", "tap0", "aa:bb:cc:dd:ee:ff"}, {"eth1", "tap1", ""}};
  vm.disks = {{"data_1", "/dev/loop3", "raw", true}};
  return vm;
}

TEST(FcRequestsTest, PreBootRequestsInOrder) {
  VmConfig vm = Vm();
  RestVmmPaths paths = RestVmmPaths::For(vm, "firecracker");
  auto r = BuildFcBootRequests(FcConfig(), vm, paths);
  ASSERT_OK(r);
  std::vector<std::string> order;
  for (const FcRequest& q : *r) order.push_back(q.path);
  EXPECT_THAT(order, ::testing::ElementsAre("/machine-config", "/boot-source", "/drives/data_1",
                                            "/network-interfaces/eth0", "/network-interfaces/eth1",
                                            "/vsock"));
  std::map<std::string, json> by_path;
  for (const FcRequest& q : *r) by_path[q.path] = q.body;
  EXPECT_EQ(by_path["/machine-config"],
            (json{{"vcpu_count", 2}, {"mem_size_mib", 256}, {"smt", false}}));
  EXPECT_EQ(by_path["/boot-source"]["kernel_image_path"], "/k/vmlinuz");
  EXPECT_EQ(by_path["/boot-source"]["initrd_path"], "/k/initrd");
  EXPECT_THAT(by_path["/boot-source"]["boot_args"].get<std::string>(), HasSubstr("console=ttyS0"));
  EXPECT_EQ(by_path["/drives/data_1"], (json{{"drive_id", "data_1"},
                                             {"path_on_host", "/dev/loop3"},
                                             {"is_root_device", false},
                                             {"is_read_only", true}}));
  EXPECT_EQ(by_path["/network-interfaces/eth0"]["guest_mac"], "aa:bb:cc:dd:ee:ff");
  EXPECT_FALSE(by_path["/network-interfaces/eth1"].contains("guest_mac"));
  EXPECT_EQ(by_path["/vsock"], (json{{"guest_cid", 3}, {"uds_path", paths.vsock_socket}}));
}

TEST(FcRequestsTest, EveryBodyMatchesTheSwagger) {
  VmConfig vm = Vm();
  auto r = BuildFcBootRequests(FcConfig(), vm, RestVmmPaths::For(vm, "firecracker"));
  ASSERT_OK(r);
  for (const FcRequest& q : *r) {
    std::string def = DefinitionFor(q.path);
    ASSERT_FALSE(def.empty()) << q.path;
    EXPECT_OK(Schemas().Validate(def, q.body)) << q.path;
  }
  EXPECT_OK(Schemas().Validate("InstanceActionInfo", FcAction("InstanceStart")));
  EXPECT_OK(Schemas().Validate("InstanceActionInfo", FcAction("SendCtrlAltDel")));
  EXPECT_FALSE(Schemas().Validate("InstanceActionInfo", FcAction("Reboot")).ok());
}

TEST(FcRequestsTest, SchemaCheckCatchesWhatFirecrackerWouldRefuse) {
  json drive = {{"drive_id", "d"}, {"path_on_host", "/x"}, {"is_read_only", false}};
  EXPECT_THAT(Schemas().Validate("Drive", drive),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is_root_device")));
  EXPECT_THAT(
      Schemas().Validate("MachineConfiguration", json{{"vcpu_count", 33}, {"mem_size_mib", 1}}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("maximum")));
  EXPECT_THAT(Schemas().Validate("Vsock", json{{"guest_cid", 3}, {"uds_path", "/v"}, {"cid", 3}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Vsock.cid")));
}

TEST(FcRequestsTest, RefusesWhatFirecrackerCannotDo) {
  VmConfig vm = Vm();
  RestVmmPaths paths = RestVmmPaths::For(vm, "firecracker");
  VmConfig shared = vm;
  shared.shared_dir = SharedDir{"/x", "kuasar", false};
  EXPECT_THAT(BuildFcBootRequests(FcConfig(), shared, paths),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("virtio-fs")));
  VmConfig qcow = vm;
  qcow.disks[0].format = "qcow2";
  EXPECT_THAT(BuildFcBootRequests(FcConfig(), qcow, paths),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("raw")));
  VmConfig dotted = vm;
  dotted.nets[0].id = "eth.0";
  EXPECT_THAT(BuildFcBootRequests(FcConfig(), dotted, paths),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("[A-Za-z0-9_]")));
  VmConfig many = vm;
  many.vcpus = 33;
  EXPECT_FALSE(BuildFcBootRequests(FcConfig(), many, paths).ok());
  FcConfig smt;
  smt.smt = true;
  VmConfig odd = vm;
  odd.vcpus = 3;
  EXPECT_THAT(BuildFcBootRequests(smt, odd, paths), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FcRequestsTest, ArgvAndState) {
  FcConfig config;
  config.path = "/opt/fc";
  VmConfig vm = Vm();
  RestVmmPaths paths = RestVmmPaths::For(vm, "firecracker");
  EXPECT_THAT(BuildFcArgv(config, vm, paths),
              ::testing::ElementsAre("/opt/fc", "--api-sock", paths.api_socket));
  json info = {{"id", "anonymous-instance"},
               {"state", "Running"},
               {"vmm_version", "1.10.0"},
               {"app_name", "Firecracker"}};
  EXPECT_OK(Schemas().Validate("InstanceInfo", info));
  auto state = FcInstanceState(info);
  ASSERT_OK(state);
  EXPECT_EQ(*state, "Running");
  EXPECT_THAT(FcInstanceState(json::array()), StatusIs(absl::StatusCode::kInternal));
}

TEST(FcConfigTest, ParsesAndRejects) {
  auto config = ParseConfig(
      "[hypervisor]\ndriver = \"firecracker\"\npath = \"/fc\"\ndefault_vcpus = 2\n"
      "memory_in_mb = 128\nsmt = true\n");
  ASSERT_OK(config);
  auto fc = ParseFcConfig(*config);
  ASSERT_OK(fc);
  EXPECT_EQ(fc->path, "/fc");
  EXPECT_EQ(fc->vcpus, 2);
  EXPECT_EQ(fc->memory_in_mb, 128);
  EXPECT_TRUE(fc->smt);
  auto parse = [](const std::string& text) -> absl::Status {
    auto c = ParseConfig(text);
    if (!c.ok()) return c.status();
    return ParseFcConfig(*c).status();
  };
  EXPECT_THAT(parse("[hypervisor]\nvcpus = 33\n"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(parse("[hypervisor]\nvirtiofsd = 1\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("virtiofsd")));
  EXPECT_THAT(parse("[hypervisor]\ndriver = \"cloud-hypervisor\"\n"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kuasar::vmm
