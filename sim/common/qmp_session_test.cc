#include "sim/common/qmp_session.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "sim/common/guest_control.h"
#include "sim/common/qmp_machine.h"

namespace kuasar::sim {
namespace {

// One QMP session over a QmpMachine and a NoopGuest, with every byte it writes kept.
class QmpHarness {
 public:
  explicit QmpHarness(QmpDialect dialect, bool start_paused = false) {
    QmpMachineConfig mc;
    mc.dialect = dialect;
    mc.vcpus = 2;
    mc.start_paused = start_paused;
    mc.version = {{"qemu", {{"micro", 22}, {"minor", 2}, {"major", 7}}}, {"package", "t"}};
    machine_ = std::make_unique<QmpMachine>(io_, mc, guest_, nullptr,
                                            [this](int code) { exit_code_ = code; });
    session_ = std::make_unique<QmpSession>(
        dialect, OJson{{"QMP", {{"version", mc.version}, {"capabilities", OJson::array()}}}},
        [this](QmpSession& s, const std::string& c, const OJson& a, QmpSession::Done d) {
          machine_->Execute(s, c, a, std::move(d));
        },
        [this](std::string bytes) { out_ += bytes; },
        [this](const OJson& ev) { session_->SendEvent(ev); });
    machine_->SetBroadcast([this](const OJson& ev) { session_->SendEvent(ev); });
    session_->Start();
    (void)machine_->Start();
  }
  // Feeds `in` and returns what the session wrote in response, timestamps blanked.
  std::string Send(const std::string& in) {
    out_.clear();
    session_->Feed(in);
    std::string s = out_;
    for (size_t p; (p = s.find("\"seconds\"")) != std::string::npos;) {
      size_t end = s.find('}', p);
      s.replace(p, end - p, "T");
    }
    return s;
  }
  std::string greeting() const { return out_; }
  NoopGuest& guest() { return guest_; }
  QmpMachine& machine() { return *machine_; }
  int exit_code() const { return exit_code_; }

 private:
  boost::asio::io_context io_;
  NoopGuest guest_;
  std::unique_ptr<QmpMachine> machine_;
  std::unique_ptr<QmpSession> session_;
  std::string out_;
  int exit_code_ = -1;
};

TEST(QmpSessionTest, QemuGreetingAndNegotiation) {
  QmpHarness h(QmpDialect::kQemu);
  EXPECT_EQ(h.greeting(),
            "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "
            "\"package\": \"t\"}, \"capabilities\": []}}\r\n");
  EXPECT_EQ(h.Send("{\"execute\":\"query-status\"}"),
            "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Expecting capabilities "
            "negotiation with 'qmp_capabilities'\"}}\r\n");
  EXPECT_EQ(h.Send("{\"execute\":\"qmp_capabilities\",\"id\":1}"),
            "{\"return\": {}, \"id\": 1}\r\n");
  EXPECT_EQ(h.Send("{\"execute\":\"qmp_capabilities\"}"),
            "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Capabilities negotiation "
            "is already complete, command ignored\"}}\r\n");
  EXPECT_EQ(h.Send("{\"execute\":\"query-status\",\"id\":[1,2]}"),
            "{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}, "
            "\"id\": [1, 2]}\r\n");
}

TEST(QmpSessionTest, QemuEnvelopeErrors) {
  QmpHarness h(QmpDialect::kQemu);
  h.Send("{\"execute\":\"qmp_capabilities\"}");
  auto err = [](const std::string& desc) {
    return "{\"error\": {\"class\": \"GenericError\", \"desc\": \"" + desc + "\"}}\r\n";
  };
  EXPECT_EQ(h.Send("[1]"), err("QMP input must be a JSON object"));
  EXPECT_EQ(h.Send("{\"foo\":1}"), err("QMP input member 'foo' is unexpected"));
  EXPECT_EQ(h.Send("{}"), err("QMP input lacks member 'execute'"));
  EXPECT_EQ(h.Send("{\"execute\":1}"), err("QMP input member 'execute' must be a string"));
  EXPECT_EQ(h.Send("{\"execute\":\"stop\",\"arguments\":[]}"),
            err("QMP input member 'arguments' must be an object"));
  EXPECT_EQ(h.Send("}"), err("JSON parse error, expecting value"));
  EXPECT_EQ(h.Send("{\"execute\":\"cont\",\"arguments\":{\"x\":1}}"),
            err("Parameter 'x' is unexpected"));
  EXPECT_EQ(h.Send("{\"execute\":\"nosuch\"}"),
            "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command nosuch has not "
            "been found\"}}\r\n");
  EXPECT_NE(h.Send("{\"execute\": foo}").find("JSON parse error"), std::string::npos);
}

TEST(QmpSessionTest, QemuLifecycleEventsComeBeforeTheReturn) {
  QmpHarness h(QmpDialect::kQemu, /*start_paused=*/true);
  h.Send("{\"execute\":\"qmp_capabilities\"}");
  EXPECT_NE(h.Send("{\"execute\":\"query-status\"}").find("\"prelaunch\""), std::string::npos);
  EXPECT_FALSE(h.guest().powered());
  EXPECT_EQ(h.Send("{\"execute\":\"cont\"}"),
            "{\"timestamp\": {T}, \"event\": \"RESUME\"}\r\n{\"return\": {}}\r\n");
  EXPECT_TRUE(h.guest().powered());
  EXPECT_EQ(h.Send("{\"execute\":\"stop\"}"),
            "{\"timestamp\": {T}, \"event\": \"STOP\"}\r\n{\"return\": {}}\r\n");
  EXPECT_TRUE(h.guest().paused());
  EXPECT_EQ(h.Send("{\"execute\":\"quit\"}"),
            "{\"timestamp\": {T}, \"event\": \"SHUTDOWN\", \"data\": {\"guest\": false, "
            "\"reason\": \"host-qmp-quit\"}}\r\n{\"return\": {}}\r\n");
  EXPECT_EQ(h.exit_code(), 0);
}

TEST(QmpSessionTest, QemuDevices) {
  QmpHarness h(QmpDialect::kQemu);
  h.Send("{\"execute\":\"qmp_capabilities\"}");
  h.machine().AddColdDevice("vs0", {{"driver", "virtio-serial-pci"}});
  EXPECT_NE(
      h.Send(R"({"execute":"device_add","arguments":{"driver":"virtio-serial-pci","id":"vs0"}})")
          .find("Duplicate device ID 'vs0'"),
      std::string::npos);
  EXPECT_NE(h.Send(R"({"execute":"device_add","arguments":{"id":"x"}})")
                .find("Parameter 'driver' is missing"),
            std::string::npos);
  EXPECT_NE(h.Send(R"({"execute":"device_add","arguments":{"driver":"bogus","id":"x"}})")
                .find("'bogus' is not a valid device model name"),
            std::string::npos);
  EXPECT_EQ(h.Send(R"({"execute":"device_add","arguments":{"driver":"virtio-blk-pci","id":"b1"}})"),
            "{\"return\": {}}\r\n");
  EXPECT_EQ(h.Send(R"({"execute":"device_del","arguments":{"id":"b1"}})"),
            "{\"return\": {}}\r\n{\"timestamp\": {T}, \"event\": \"DEVICE_DELETED\", \"data\": "
            "{\"device\": \"b1\", \"path\": \"/machine/peripheral/b1\"}}\r\n");
  EXPECT_EQ(
      h.Send(R"({"execute":"device_del","arguments":{"id":"b1"}})"),
      "{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"Device 'b1' not found\"}}\r\n");
  EXPECT_NE(h.Send(R"({"execute":"getfd","arguments":{"fdname":"f"}})")
                .find("No file descriptor supplied via SCM_RIGHTS"),
            std::string::npos);
  std::string cpus = h.Send("{\"execute\":\"query-cpus-fast\"}");
  EXPECT_NE(cpus.find("\"cpu-index\": 1"), std::string::npos);
}

TEST(QmpSessionTest, BackToBackCommandsAnswerInOrder) {
  QmpHarness h(QmpDialect::kQemu);
  EXPECT_EQ(h.Send("{\"execute\":\"qmp_capabilities\",\"id\":\"a\"}{\"execute\":\"query-name\","
                   "\"id\":\"b\"}"),
            "{\"return\": {}, \"id\": \"a\"}\r\n{\"return\": {}, \"id\": \"b\"}\r\n");
}

TEST(QmpSessionTest, StratoVirtNeedsNoNegotiationAndIsCompact) {
  QmpHarness h(QmpDialect::kStratoVirt);
  EXPECT_EQ(h.Send("{\"execute\":\"query-status\"}"),
            "{\"return\":{\"running\":true,\"singlestep\":false,\"status\":\"running\"}}\r\n");
  EXPECT_EQ(h.Send("{\"execute\":\"qmp_capabilities\"}"), "{\"return\":{}}\r\n");
  EXPECT_EQ(h.Send("{\"execute\":\"qmp_capabilities\"}"), "{\"return\":{}}\r\n");
  EXPECT_NE(h.Send("{\"execute\":\"nosuch\"}").find("unknown variant `nosuch`"), std::string::npos);
  EXPECT_EQ(h.Send("{\"execute\":\"stop\"}"),
            "{\"event\":\"STOP\",\"data\":{},\"timestamp\":{T}}\r\n{\"return\":{}}\r\n");
  // StratoVirt answers quit first, then sends SHUTDOWN (qmp_socket.rs).
  EXPECT_EQ(h.Send("{\"execute\":\"quit\"}"),
            "{\"return\":{}}\r\n{\"event\":\"SHUTDOWN\",\"data\":{\"guest\":false,\"reason\":"
            "\"host-qmp-quit\"},\"timestamp\":{T}}\r\n");
}

}  // namespace
}  // namespace kuasar::sim
