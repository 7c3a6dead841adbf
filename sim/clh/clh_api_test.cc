#include "sim/clh/clh_api.h"

#include <gtest/gtest.h>

#include "sim/common/guest_control.h"

namespace kuasar::sim::clh {
namespace {

using nlohmann::json;

class ClhApiTest : public ::testing::Test {
 protected:
  ClhApiTest() : api_(guest_, /*check_files=*/false, Hooks()) {}
  ClhApi::Hooks Hooks() {
    ClhApi::Hooks h;
    h.exit_vmm = [this] { exited_ = true; };
    return h;
  }
  RestReply Put(const std::string& ep, const std::string& body = "") {
    return api_.Dispatch({"PUT", "/api/v1/" + ep, body});
  }
  RestReply Get(const std::string& ep) { return api_.Dispatch({"GET", "/api/v1/" + ep, ""}); }
  static json Body(const RestReply& r) { return json::parse(r.body); }

  const std::string kConfig = R"({"cpus":{"boot_vcpus":2,"max_vcpus":2},
      "memory":{"size":268435456},"payload":{"kernel":"/k","cmdline":"console=hvc0"},
      "disks":[{"path":"/d.img"}],"vsock":{"cid":3,"socket":"/v.sock"}})";
  NoopGuest guest_;
  ClhApi api_;
  bool exited_ = false;
};

TEST_F(ClhApiTest, PingAndNotFound) {
  RestReply r = Get("vmm.ping");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Body(r)["version"], kClhVersion);
  EXPECT_EQ(Body(Get("vm.nothing")), json({"Not Found"}));
  EXPECT_EQ(api_.Dispatch({"GET", "/elsewhere", ""}).status, 404);
  EXPECT_EQ(Body(Get("vm.boot")), json({"Bad Request"}));  // PUT-only
  EXPECT_EQ(api_.Dispatch({"POST", "/api/v1/vm.boot", ""}).status, 400);
}

TEST_F(ClhApiTest, WrongStateCodesAndBodies) {
  RestReply r = Put("vm.boot");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Body(r), json({"Error from API", "The VM could not boot", "VM config is missing"}));
  EXPECT_EQ(Get("vm.info").status, 404);
  EXPECT_EQ(Body(Put("vm.shutdown")),
            json({"Error from API", "The VM could not shutdown", "VM is not running"}));
  EXPECT_EQ(Put("vm.pause").status, 500);
  EXPECT_EQ(Put("vm.add-disk", R"({"path":"/x"})").status, 404);
  EXPECT_EQ(Put("vm.create").status, 400);  // no body
  EXPECT_EQ(Body(Put("vm.create", "{")),
            json({"Failed to deserialize JSON", "expected value at line 1 column 1"}));
  EXPECT_EQ(Body(Put("vm.create", R"({"cpus":{"boot_vcpus":1,"max_vcpus":1}})")),
            json({"Failed to deserialize JSON", "missing field `payload`"}));
  EXPECT_EQ(Body(Put("vm.create", R"({"payload":{"kernel":7}})")),
            json({"Failed to deserialize JSON", "invalid type: integer `7`, expected a string"}));
  RestReply v =
      Put("vm.create", R"({"cpus":{"boot_vcpus":4,"max_vcpus":2},"payload":{"kernel":"/k"}})");
  EXPECT_EQ(v.status, 500);
  EXPECT_EQ(Body(v).back(), "Max CPUs lower than boot CPUs");
}

TEST_F(ClhApiTest, CreateBootInfoShutdownDelete) {
  ASSERT_EQ(Put("vm.create", kConfig).status, 204);
  RestReply again = Put("vm.create", kConfig);
  EXPECT_EQ(again.status, 500);
  EXPECT_EQ(Body(again),
            json({"Error from API", "The VM could not be created", "VM is already created"}));
  json info = Body(Get("vm.info"));
  EXPECT_EQ(info["state"], "Created");
  EXPECT_EQ(info["config"]["memory"]["thp"], true);  // defaults filled
  EXPECT_FALSE(info.contains("device_tree"));
  EXPECT_EQ(Put("vm.boot", "{}").status, 400);  // a body where none belongs
  ASSERT_EQ(Put("vm.boot").status, 204);
  EXPECT_TRUE(guest_.powered());
  info = Body(Get("vm.info"));
  EXPECT_EQ(info["state"], "Running");
  EXPECT_EQ(info["config"]["disks"][0]["id"], "_disk0");
  EXPECT_EQ(info["config"]["vsock"]["id"], "_vsock1");
  EXPECT_EQ(info["device_tree"]["_disk0"]["pci_bdf"], "0000:00:01.0");
  EXPECT_EQ(info["memory_actual_size"], 268435456);
  EXPECT_EQ(Body(Put("vm.boot")).back(), "invalid VM state transition: Running to Running");
  ASSERT_EQ(Put("vm.shutdown").status, 204);
  EXPECT_FALSE(guest_.powered());
  EXPECT_EQ(Body(Get("vm.info"))["state"], "Created");
  ASSERT_EQ(Put("vm.boot").status, 204);  // boots again from the kept config
  ASSERT_EQ(Put("vm.delete").status, 204);
  EXPECT_EQ(Get("vm.info").status, 404);
}

TEST_F(ClhApiTest, PauseResumeRebootPowerButton) {
  ASSERT_EQ(Put("vm.create", kConfig).status, 204);
  EXPECT_EQ(Body(Put("vm.reboot")).back(), "VM is not running");
  ASSERT_EQ(Put("vm.boot").status, 204);
  EXPECT_EQ(Body(Put("vm.resume")).back(), "invalid VM state transition: Running to Running");
  ASSERT_EQ(Put("vm.pause").status, 204);
  EXPECT_TRUE(guest_.paused());
  EXPECT_EQ(Body(Get("vm.info"))["state"], "Paused");
  EXPECT_EQ(Body(Put("vm.pause")).back(), "invalid VM state transition: Paused to Paused");
  ASSERT_EQ(Put("vm.resume").status, 204);
  EXPECT_EQ(Put("vm.reboot").status, 204);
  EXPECT_EQ(Put("vm.power-button").status, 204);
  EXPECT_EQ(Get("vm.counters").status, 200);
}

TEST_F(ClhApiTest, HotAndColdPlug) {
  ASSERT_EQ(Put("vm.create", kConfig).status, 204);
  EXPECT_EQ(Put("vm.add-fs", R"({"tag":"kuasar","socket":"/fs.sock"})").status, 204);  // cold
  EXPECT_EQ(Body(Put("vm.add-fs", R"({"tag":"x"})")),
            json({"Failed to deserialize JSON", "missing field `socket`"}));
  ASSERT_EQ(Put("vm.boot").status, 204);
  RestReply hot = Put("vm.add-disk", R"({"path":"/e.img","readonly":true})");
  ASSERT_EQ(hot.status, 200);
  EXPECT_EQ(Body(hot)["id"], "_disk3");
  EXPECT_EQ(Body(hot)["bdf"], "0000:00:04.0");
  RestReply named = Put("vm.add-net", R"({"tap":"tap0","id":"net0"})");
  EXPECT_EQ(Body(named)["id"], "net0");
  RestReply dup = Put("vm.add-disk", R"({"path":"/f.img","id":"net0"})");
  EXPECT_EQ(dup.status, 500);
  EXPECT_EQ(Body(dup).back(), "Identifier net0 is not unique");
  EXPECT_EQ(Body(Put("vm.add-vsock", R"({"cid":4,"socket":"/w.sock"})")).back(),
            "Only one vsock device is supported");
  EXPECT_EQ(Put("vm.remove-device", R"({"id":"net0"})").status, 204);
  EXPECT_EQ(Put("vm.remove-device", R"({"id":"net0"})").status, 404);
  EXPECT_EQ(Put("vm.snapshot", R"({"destination_url":"file:///x"})").status, 500);
}

TEST_F(ClhApiTest, VmmShutdownExitsAfterTheReply) {
  ASSERT_EQ(Put("vm.create", kConfig).status, 204);
  ASSERT_EQ(Put("vm.boot").status, 204);
  RestReply r = Put("vmm.shutdown");
  EXPECT_EQ(r.status, 204);
  EXPECT_FALSE(guest_.powered());
  EXPECT_FALSE(exited_);
  ASSERT_TRUE(r.after_sent);
  r.after_sent();
  EXPECT_TRUE(exited_);
}

TEST(ClhApiFilesTest, BootChecksTheKernelExists) {
  NoopGuest guest;
  ClhApi api(guest, /*check_files=*/true, {});
  ASSERT_EQ(
      api.Dispatch({"PUT", "/api/v1/vm.create", R"({"payload":{"kernel":"/nonexistent/vmlinux"}})"})
          .status,
      204);
  RestReply r = api.Dispatch({"PUT", "/api/v1/vm.boot", ""});
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(json::parse(r.body).back(),
            "Cannot open kernel file: No such file or directory (os error 2)");
}

}  // namespace
}  // namespace kuasar::sim::clh
