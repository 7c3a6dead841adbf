// The QEMU personality as a process: QMP over its socket, the agent over the
// virtio-serial chardev socket, -S/cont, powerdown and quit, -daemonize, and errors.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "sim/testing/fake_vmm_process.h"
#include "sim/testing/qmp_client.h"
#include "sim/testing/rest_client.h"

namespace kuasar::sim {
namespace {

using nlohmann::json;
using testing::FakeVmmOptions;
using testing::FakeVmmProcess;
using testing::QmpClient;

class QemuVmmTest : public ::testing::Test {
 protected:
  std::string Qmp() const { return dir_.Sub("qmp.sock"); }
  std::string Agent() const { return dir_.Sub("agent.sock"); }
  std::vector<std::string> Args(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {"-name",
                                  "pod-q",
                                  "-machine",
                                  "q35,accel=kvm",
                                  "-cpu",
                                  "host",
                                  "-smp",
                                  "2",
                                  "-m",
                                  "256M",
                                  "-kernel",
                                  "/k",
                                  "-append",
                                  "console=hvc0",
                                  "-nographic",
                                  "-nodefaults",
                                  "-no-reboot",
                                  "-qmp",
                                  "unix:" + Qmp() + ",server=on,wait=off",
                                  "-chardev",
                                  "socket,id=agent,path=" + Agent() + ",server=on,wait=off",
                                  "-device",
                                  "virtio-serial-pci,id=serial0",
                                  "-device",
                                  "virtserialport,chardev=agent,id=channel0,name=agent.channel.0"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  absl::StatusOr<FakeVmmProcess> Start(std::vector<std::string> args, bool wait = true) {
    FakeVmmOptions o;
    o.personality = "qemu-system-x86_64";
    o.args = std::move(args);
    if (wait) o.wait_socket = Qmp();
    o.log_file = dir_.Sub("vmm.log");
    return FakeVmmProcess::Start(o);
  }
  // Agent round trip over the serial channel once the guest is up.
  std::string Echo(const std::string& msg) {
    std::string got;
    testing::WaitUntil(
        [&] {
          auto fd = testing::ConnectUnix(Agent());
          if (!fd.ok()) return false;
          got = testing::RoundTrip(fd->get(), msg, msg.size(), 500);
          return got == msg;
        },
        5000);
    return got;
  }
  TempDir dir_{"simqemu"};
};

// As QEMU: the chardev connection does not depend on the guest's port. A host that
// connects before the guest opened the port keeps its connection (its bytes wait), and
// stays connected across a guest reset; VSERPORT_CHANGE (hw/char/virtio-console.c
// set_guest_connected) reports the port's -device id opening and closing.
TEST_F(QemuVmmTest, HostConnectionOutlivesTheGuestPortAndVserportChangeReportsIt) {
  auto vmm = Start(Args({"-S"}));
  ASSERT_OK(vmm);
  auto qmp = QmpClient::Connect(Qmp());
  ASSERT_OK(qmp);
  ASSERT_OK(qmp->Negotiate());
  auto host = testing::ConnectUnix(Agent());
  ASSERT_OK(host);
  ASSERT_EQ(::send(host->get(), "!pid\n", 5, MSG_NOSIGNAL), 5);  // waits: no guest yet
  ASSERT_OK(qmp->Execute("cont"));
  auto opened = qmp->WaitEvent("VSERPORT_CHANGE");
  ASSERT_OK(opened);
  EXPECT_EQ((*opened)["data"], json({{"id", "channel0"}, {"open", true}}));
  std::string first = testing::RoundTrip(host->get(), "", 6, 3000);
  EXPECT_EQ(first.rfind("pid=", 0), 0u) << first << vmm->Log();
  // A client that missed the event: query-chardev's frontend-open.
  auto chardevs = qmp->Execute("query-chardev");
  ASSERT_OK(chardevs);
  ASSERT_EQ((*chardevs)["return"].size(), 1u);
  EXPECT_EQ((*chardevs)["return"][0]["label"], "agent");
  EXPECT_EQ((*chardevs)["return"][0]["frontend-open"], true);

  ASSERT_OK(qmp->Execute("system_reset"));
  auto closed = qmp->WaitEvent("VSERPORT_CHANGE");
  ASSERT_OK(closed);
  EXPECT_EQ((*closed)["data"], json({{"id", "channel0"}, {"open", false}}));
  auto reopened = qmp->WaitEvent("VSERPORT_CHANGE");
  ASSERT_OK(reopened);
  EXPECT_EQ((*reopened)["data"]["open"], true);
  std::string again = testing::RoundTrip(host->get(), "!pid\n", 6, 3000);
  EXPECT_EQ(again.rfind("pid=", 0), 0u) << again << vmm->Log();
}

TEST_F(QemuVmmTest, QmpLifecycleAndTheAgentOverVirtioSerial) {
  auto vmm = Start(Args());
  ASSERT_OK(vmm);
  auto qmp = QmpClient::Connect(Qmp());
  ASSERT_OK(qmp);
  EXPECT_EQ(qmp->greeting()["QMP"]["version"]["qemu"]["major"], 7);
  auto early = qmp->Execute("query-status");
  ASSERT_OK(early);
  EXPECT_EQ((*early)["error"]["class"], "CommandNotFound");
  ASSERT_OK(qmp->Negotiate());
  auto status = qmp->Execute("query-status");
  ASSERT_OK(status);
  EXPECT_EQ((*status)["return"]["status"], "running");
  auto cpus = qmp->Execute("query-cpus-fast");
  ASSERT_OK(cpus);
  EXPECT_EQ((*cpus)["return"].size(), 2u);
  auto ver = qmp->Execute("query-version");
  ASSERT_OK(ver);
  EXPECT_EQ((*ver)["return"]["qemu"]["minor"], 2);

  EXPECT_EQ(Echo("hello over virtio-serial"), "hello over virtio-serial") << vmm->Log();
  auto pid = testing::ConnectUnix(Agent());
  ASSERT_OK(pid);
  std::string who = testing::RoundTrip(pid->get(), "!env KUASAR_GUEST_CHANNEL\n", 10);
  EXPECT_EQ(who, "KUASAR_GUEST_CHANNEL=serial:agent.channel.0\n");

  ASSERT_OK(qmp->Execute("stop"));
  ASSERT_OK(qmp->WaitEvent("STOP"));
  EXPECT_EQ((*qmp->Execute("query-status"))["return"]["status"], "paused");
  ASSERT_OK(qmp->Execute("cont"));
  ASSERT_OK(qmp->WaitEvent("RESUME"));

  ASSERT_OK(qmp->Execute("device_add", {{"driver", "virtio-blk-pci"}, {"id", "blk1"}}));
  ASSERT_OK(qmp->Execute("device_del", {{"id", "blk1"}}));
  auto deleted = qmp->WaitEvent("DEVICE_DELETED");
  ASSERT_OK(deleted);
  EXPECT_EQ((*deleted)["data"]["device"], "blk1");

  // system_powerdown: POWERDOWN, the agent's SIGTERM, SHUTDOWN, and QEMU exits.
  pid->Reset();
  ASSERT_OK(qmp->Execute("system_powerdown"));
  ASSERT_OK(qmp->WaitEvent("POWERDOWN"));
  auto shutdown = qmp->WaitEvent("SHUTDOWN");
  ASSERT_OK(shutdown);
  EXPECT_EQ((*shutdown)["data"], json({{"guest", true}, {"reason", "guest-shutdown"}}));
  auto st = vmm->WaitExit(3000);
  ASSERT_OK(st);
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0);
  EXPECT_FALSE(testing::ConnectUnix(Qmp()).ok());  // QEMU removes its sockets
}

TEST_F(QemuVmmTest, OneHostConnectionAtATime) {
  auto vmm = Start(Args());
  ASSERT_OK(vmm);
  ASSERT_EQ(Echo("warm"), "warm");
  auto first = testing::ConnectUnix(Agent());
  ASSERT_OK(first);
  EXPECT_EQ(testing::RoundTrip(first->get(), "one", 3), "one");
  auto second = testing::ConnectUnix(Agent());  // waits in the backlog
  ASSERT_OK(second);
  EXPECT_EQ(testing::RoundTrip(second->get(), "two", 3, 300), "");
  first->Reset();
  // The bytes the second host wrote while waiting reach the guest once it is accepted.
  EXPECT_EQ(testing::ReadSome(second->get(), 3000), "two");
}

TEST_F(QemuVmmTest, StartPausedBootsOnCont) {
  auto vmm = Start(Args({"-S"}));
  ASSERT_OK(vmm);
  auto qmp = QmpClient::Connect(Qmp());
  ASSERT_OK(qmp);
  ASSERT_OK(qmp->Negotiate());
  EXPECT_EQ((*qmp->Execute("query-status"))["return"]["status"], "prelaunch");
  EXPECT_TRUE(vmm->Children().empty());
  ASSERT_OK(qmp->Execute("cont"));
  EXPECT_EQ(Echo("booted"), "booted");
  ASSERT_OK(qmp->Execute("quit"));
  auto ev = qmp->WaitEvent("SHUTDOWN");
  ASSERT_OK(ev);
  EXPECT_EQ((*ev)["data"]["reason"], "host-qmp-quit");
  auto st = vmm->WaitExit(3000);
  ASSERT_OK(st);
  EXPECT_EQ(WEXITSTATUS(*st), 0);
}

TEST_F(QemuVmmTest, DaemonizeWritesThePidFile) {
  std::string pidfile = dir_.Sub("qemu.pid");
  auto parent = Start(Args({"-daemonize", "-pidfile", pidfile}), false);
  ASSERT_OK(parent);
  auto st = parent->WaitExit(5000);  // the parent exits 0 once the daemon is ready
  ASSERT_OK(st);
  ASSERT_EQ(WEXITSTATUS(*st), 0) << parent->Log();
  pid_t daemon = 0;
  std::ifstream(pidfile) >> daemon;
  ASSERT_GT(daemon, 0);
  EXPECT_TRUE(testing::ProcessAlive(daemon));
  auto qmp = QmpClient::Connect(Qmp());
  ASSERT_OK(qmp);
  ASSERT_OK(qmp->Negotiate());
  EXPECT_EQ(Echo("daemon"), "daemon");
  ASSERT_OK(qmp->Execute("quit"));
  EXPECT_TRUE(testing::WaitUntil([&] { return !testing::ProcessAlive(daemon); }, 3000));
  EXPECT_FALSE(std::ifstream(pidfile).good());
}

TEST_F(QemuVmmTest, CommandLineErrorsAsQemuWritesThem) {
  auto bad = Start({"-bogus"}, false);
  ASSERT_OK(bad);
  auto st = bad->WaitExit(3000);
  ASSERT_OK(st);
  EXPECT_EQ(WEXITSTATUS(*st), 1);
  EXPECT_NE(bad->Log().find("qemu-system-x86_64: -bogus: invalid option"), std::string::npos);
  auto vsock = Start({"-device", "vhost-vsock-pci,id=vsock0,guest-cid=3"}, false);
  ASSERT_OK(vsock);
  ASSERT_OK(vsock->WaitExit(3000));
  EXPECT_NE(vsock->Log().find("vhost-vsock: failed to open vhost device"), std::string::npos);
}

}  // namespace
}  // namespace kuasar::sim
