#include "sim/firecracker/fc_api.h"

#include <gtest/gtest.h>

#include "sim/common/guest_control.h"

namespace kuasar::sim::fc {
namespace {

using nlohmann::json;

class FcApiTest : public ::testing::Test {
 protected:
  FcApiTest() : api_(guest_, "vm-1", /*check_files=*/false, {}) {}
  RestReply Call(const std::string& method, const std::string& path, const std::string& body = "") {
    return api_.Dispatch({method, path, body});
  }
  static std::string Fault(const RestReply& r) {
    return json::parse(r.body).value("fault_message", "");
  }
  void Configure() {
    ASSERT_EQ(
        Call("PUT", "/boot-source", R"({"kernel_image_path":"/k","boot_args":"console=ttyS0"})")
            .status,
        204);
    ASSERT_EQ(Call("PUT", "/machine-config", R"({"vcpu_count":2,"mem_size_mib":256})").status, 204);
    ASSERT_EQ(
        Call(
            "PUT", "/drives/rootfs",
            R"({"drive_id":"rootfs","path_on_host":"/r.img","is_root_device":true,"is_read_only":false})")
            .status,
        204);
  }
  NoopGuest guest_;
  FcApi api_;
};

TEST_F(FcApiTest, InstanceInfoAndDefaults) {
  RestReply r = Call("GET", "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body), json({{"id", "vm-1"},
                                       {"state", "Not started"},
                                       {"vmm_version", kFcVersion},
                                       {"app_name", "Firecracker"}}));
  json mc = json::parse(Call("GET", "/machine-config").body);
  EXPECT_EQ(mc["vcpu_count"], 1);
  EXPECT_EQ(mc["mem_size_mib"], 128);
  EXPECT_EQ(json::parse(Call("GET", "/version").body)["firecracker_version"], kFcVersion);
}

TEST_F(FcApiTest, InstanceStartNeedsABootSource) {
  RestReply r = Call("PUT", "/actions", R"({"action_type":"InstanceStart"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Fault(r), "Cannot start microvm without kernel configuration.");
  EXPECT_FALSE(guest_.powered());
}

TEST_F(FcApiTest, BodyAndPathErrors) {
  EXPECT_EQ(Fault(Call("PUT", "/boot-source", R"({"boot_args":"x"})")),
            "An error occurred when deserializing the json body of a request: missing field "
            "`kernel_image_path`.");
  EXPECT_EQ(Fault(Call("PUT", "/machine-config", R"({"vcpu_count":1,"mem_size_mib":1,"foo":1})")),
            "An error occurred when deserializing the json body of a request: unknown field "
            "`foo`, expected one of `vcpu_count`, `mem_size_mib`, `smt`, `track_dirty_pages`, "
            "`cpu_template`, `huge_pages`.");
  EXPECT_EQ(Fault(Call("PUT", "/actions", R"({"action_type":"Reboot"})")),
            "An error occurred when deserializing the json body of a request: unknown variant "
            "`Reboot`, expected one of `FlushMetrics`, `InstanceStart`, `SendCtrlAltDel`.");
  EXPECT_EQ(Fault(Call("PUT", "/drives/a", R"({"drive_id":"b","is_root_device":false})")),
            "The id from the path does not match the id from the body!");
  EXPECT_EQ(Fault(Call("PUT", "/drives/a-b", R"({"drive_id":"a-b","is_root_device":false})")),
            "API Resource IDs can only contain alphanumeric characters and underscores.");
  EXPECT_EQ(Fault(Call("PUT", "/drives", R"({"drive_id":"a","is_root_device":false})")),
            "The ID cannot be empty.");
  EXPECT_EQ(Fault(Call("PUT", "/machine-config", R"({"vcpu_count":33,"mem_size_mib":128})"))
                .substr(0, 28),
            "The vCPU number is invalid! ");
  EXPECT_EQ(Fault(Call("PUT", "/vm", R"({"state":"Paused"})")),
            "Invalid request method and/or path: PUT vm.");
  EXPECT_EQ(Fault(Call("PUT", "/vsock")), "Empty PUT request.");
  EXPECT_EQ(Fault(Call("GET", "/machine-config", "{}")), "GET request cannot have a body.");
  EXPECT_EQ(Fault(Call("DELETE", "/")), "Invalid request method and/or path: DELETE .");
  EXPECT_EQ(Fault(Call("PATCH", "/vm", R"({"state":"Paused"})")), kNotBeforeBoot);
  EXPECT_EQ(Fault(Call("PUT", "/actions", R"({"action_type":"SendCtrlAltDel"})")), kNotBeforeBoot);
}

TEST_F(FcApiTest, StartPauseAndPostBootRules) {
  Configure();
  EXPECT_EQ(Fault(Call("PUT", "/drives/data",
                       R"({"drive_id":"data","path_on_host":"/d","is_root_device":true})")),
            "A root block device already exists!");
  ASSERT_EQ(Call("PUT", "/actions", R"({"action_type":"InstanceStart"})").status, 204);
  EXPECT_TRUE(guest_.powered());
  EXPECT_EQ(json::parse(Call("GET", "/").body)["state"], "Running");
  EXPECT_EQ(Fault(Call("PUT", "/actions", R"({"action_type":"InstanceStart"})")), kNotAfterBoot);
  EXPECT_EQ(Fault(Call("PUT", "/boot-source", R"({"kernel_image_path":"/k"})")), kNotAfterBoot);
  EXPECT_EQ(Fault(Call("PUT", "/machine-config", R"({"vcpu_count":1,"mem_size_mib":1})")),
            kNotAfterBoot);
  ASSERT_EQ(Call("PATCH", "/vm", R"({"state":"Paused"})").status, 204);
  EXPECT_TRUE(guest_.paused());
  EXPECT_EQ(json::parse(Call("GET", "/").body)["state"], "Paused");
  ASSERT_EQ(Call("PATCH", "/vm", R"({"state":"Resumed"})").status, 204);
  EXPECT_EQ(Call("PUT", "/actions", R"({"action_type":"FlushMetrics"})").status, 204);
  EXPECT_EQ(Call("PUT", "/actions", R"({"action_type":"SendCtrlAltDel"})").status, 204);
  json full = json::parse(Call("GET", "/vm/config").body);
  EXPECT_EQ(full["machine-config"]["vcpu_count"], 2);
  EXPECT_EQ(full["drives"][0]["drive_id"], "rootfs");
  EXPECT_EQ(full["boot-source"]["boot_args"], "console=ttyS0");
}

TEST_F(FcApiTest, ConfigFileStartsTheMicroVm) {
  ASSERT_TRUE(api_.ApplyConfigFile(json::parse(R"({
      "boot-source": {"kernel_image_path": "/k"},
      "drives": [{"drive_id": "rootfs", "path_on_host": "/r", "is_root_device": true}],
      "machine-config": {"vcpu_count": 1, "mem_size_mib": 64}})"))
                  .ok());
  EXPECT_TRUE(api_.started());
  EXPECT_TRUE(guest_.powered());
  NoopGuest g2;
  FcApi bad(g2, "x", false, {});
  absl::Status st = bad.ApplyConfigFile(json::parse(R"({"drives": [{"drive_id": "r"}]})"));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(std::string(st.message()).find("missing field `is_root_device`"), std::string::npos);
}

TEST(FcApiFilesTest, BootSourceChecksTheKernel) {
  NoopGuest guest;
  FcApi api(guest, "x", /*check_files=*/true, {});
  RestReply r = api.Dispatch({"PUT", "/boot-source", R"({"kernel_image_path":"/nonexistent"})"});
  EXPECT_EQ(json::parse(r.body)["fault_message"],
            "The kernel file cannot be opened: No such file or directory (os error 2)");
}

}  // namespace
}  // namespace kuasar::sim::fc
