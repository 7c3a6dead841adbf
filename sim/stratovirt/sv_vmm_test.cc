// The StratoVirt personality as a process, started the way Kuasar's StratoVirt driver
// starts it (config.rs test_stratovirt_params), plus the agent's virtio-serial port.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "sim/testing/fake_vmm_process.h"
#include "sim/testing/qmp_client.h"
#include "sim/testing/rest_client.h"

namespace kuasar::sim {
namespace {

using testing::FakeVmmOptions;
using testing::FakeVmmProcess;
using testing::QmpClient;

class StratoVirtVmmTest : public ::testing::Test {
 protected:
  std::string Qmp() const { return dir_.Sub("qmp.sock"); }
  std::string Agent() const { return dir_.Sub("agent.sock"); }
  std::vector<std::string> KuasarArgs(bool daemonize) const {
    std::vector<std::string> a = {
        "-name",
        "sandbox-1",
        "-uuid",
        "6e7b0e90-3b2e-4179-bc30-43d2b5b5964f",
        "-machine",
        "virt",
        "-qmp",
        "unix:" + Qmp() + ",server,nowait",
        "-kernel",
        "/k",
        "-append",
        "console=hvc0 console=hvc1 iommu=off debug panic=1 pcie_ports=native",
        "-smp",
        "cpus=1",
        "-m",
        "1024M",
        "-pidfile",
        dir_.Sub("pid"),
        "-D",
        dir_.Sub("sv.log"),
        "-global",
        "pcie-root-port.fast-unplug=1",
        "-disable-seccomp",
        "-device",
        "virtio-serial-device,id=virtio-serial0",
        "-chardev",
        "socket,id=agent,path=" + Agent() + ",server,nowait",
        "-device",
        "virtserialport,chardev=agent,id=channel0,name=agent.channel.0,nr=1"};
    if (daemonize) a.push_back("-daemonize");
    return a;
  }
  TempDir dir_{"simsv"};
};

TEST_F(StratoVirtVmmTest, KuasarCommandLineDaemonizesAndServes) {
  FakeVmmOptions o;
  o.personality = "stratovirt";
  o.args = KuasarArgs(true);
  o.log_file = dir_.Sub("out.log");
  auto parent = FakeVmmProcess::Start(o);
  ASSERT_OK(parent);
  auto st = parent->WaitExit(5000);
  ASSERT_OK(st);
  ASSERT_EQ(WEXITSTATUS(*st), 0) << parent->Log();
  pid_t daemon = 0;
  std::ifstream(dir_.Sub("pid")) >> daemon;
  ASSERT_GT(daemon, 0);

  auto qmp = QmpClient::Connect(Qmp());
  ASSERT_OK(qmp);
  EXPECT_EQ(qmp->greeting()["QMP"]["version"]["package"], "StratoVirt-2.4.0");
  EXPECT_EQ(qmp->lines().front().find(": "), std::string::npos);  // compact JSON
  auto status = qmp->Execute("query-status");                     // no negotiation needed
  ASSERT_OK(status);
  EXPECT_EQ((*status)["return"]["status"], "running");
  std::string got;
  EXPECT_TRUE(testing::WaitUntil(
      [&] {
        auto fd = testing::ConnectUnix(Agent());
        if (!fd.ok()) return false;
        got = testing::RoundTrip(fd->get(), "!pid\n", 6, 500);
        return got.rfind("pid=", 0) == 0;
      },
      5000))
      << got;
  auto quit = qmp->Execute("quit");
  ASSERT_OK(quit);
  EXPECT_TRUE(quit->contains("return"));
  auto ev = qmp->WaitEvent("SHUTDOWN");  // after the return, as StratoVirt sends it
  ASSERT_OK(ev);
  EXPECT_TRUE(testing::WaitUntil([&] { return !testing::ProcessAlive(daemon); }, 3000));
  std::ifstream log(dir_.Sub("sv.log"));
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("op=agent-start"), std::string::npos);  // -D keeps the log
}

// The driver dials agent.sock once the VM runs, which may be before the guest opened its
// port (StratoVirt has no port event): that connection must stay up, its bytes waiting
// for the guest, and survive a guest reset, as StratoVirt's chardev keeps it.
TEST_F(StratoVirtVmmTest, AHostConnectedBeforeTheGuestBootsIsServedAndKept) {
  FakeVmmOptions o;
  o.personality = "stratovirt";
  o.args = KuasarArgs(false);
  o.args.push_back("-S");
  o.wait_socket = Qmp();
  o.log_file = dir_.Sub("out.log");
  auto vmm = FakeVmmProcess::Start(o);
  ASSERT_OK(vmm);
  auto qmp = QmpClient::Connect(Qmp());
  ASSERT_OK(qmp);
  auto host = testing::ConnectUnix(Agent());
  ASSERT_OK(host);
  ASSERT_EQ(::send(host->get(), "!pid\n", 5, MSG_NOSIGNAL), 5);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // no guest: bytes wait
  ASSERT_OK(qmp->Execute("cont"));
  std::string first = testing::RoundTrip(host->get(), "", 6, 3000);
  EXPECT_EQ(first.rfind("pid=", 0), 0u) << first << vmm->Log();
  ASSERT_OK(qmp->Execute("system_reset"));
  std::string again;
  EXPECT_TRUE(testing::WaitUntil(
      [&] {
        again = testing::RoundTrip(host->get(), "!pid\n", 6, 500);
        return again.rfind("pid=", 0) == 0;
      },
      5000))
      << again << vmm->Log();
}

TEST_F(StratoVirtVmmTest, ErrorsAndALeftoverSocket) {
  FakeVmmOptions o;
  o.personality = "stratovirt";
  o.log_file = dir_.Sub("out.log");
  o.args = {"-bogus"};
  auto bad = FakeVmmProcess::Start(o);
  ASSERT_OK(bad);
  auto st = bad->WaitExit(3000);
  ASSERT_OK(st);
  EXPECT_EQ(WEXITSTATUS(*st), 1);
  EXPECT_NE(bad->Log().find("Found argument '-bogus' which wasn't expected"), std::string::npos);
  // StratoVirt does not remove an existing QMP socket file.
  testing::WriteFile(dir_.path(), "qmp.sock", "");
  o.args = KuasarArgs(false);
  auto taken = FakeVmmProcess::Start(o);
  ASSERT_OK(taken);
  st = taken->WaitExit(3000);
  ASSERT_OK(st);
  EXPECT_EQ(WEXITSTATUS(*st), 1);
}

}  // namespace
}  // namespace kuasar::sim
