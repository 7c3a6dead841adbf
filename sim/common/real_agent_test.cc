// Every personality with the REAL guest agent (vmm-task, not the stand-in): boot the fake
// VM as the vmm sandboxer would, reach the agent over the channel that VMM offers (hybrid
// vsock for CH/FC, the virtio-serial chardev socket for QEMU/StratoVirt), call
// kuasar.agent.v1.Sandbox/Check over ttrpc, power off, and check that no agent is left.
// Plus faults against the real agent. Root: the agent is PID 1 of fresh namespaces.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>

#include "kuasar/agent/v1/agent.pb.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/ttrpc/client.h"
#include "runtime/ttrpc/typed_client.h"
#include "sim/testing/fake_vmm_process.h"
#include "sim/testing/qmp_client.h"
#include "sim/testing/rest_client.h"

namespace kuasar::sim {
namespace {

namespace agentpb = ::kuasar::agent::v1;
using nlohmann::json;
using testing::FakeVmmOptions;
using testing::FakeVmmProcess;
using testing::QmpClient;
using Clock = std::chrono::steady_clock;
constexpr char kSvc[] = "kuasar.agent.v1.Sandbox";

std::string SkipReason() {
  if (::geteuid() != 0) return "needs root (the agent is PID 1 of fresh namespaces)";
  if (::access("/usr/sbin/runc", X_OK) != 0 && ::access("/usr/bin/runc", X_OK) != 0 &&
      ::access("/usr/bin/crun", X_OK) != 0) {
    return "vmm-task needs runc or crun";
  }
  return "";
}

absl::StatusOr<agentpb::CheckResponse> Check(ttrpc::Client& client, int timeout_ms) {
  ttrpc::CallOptions o;
  o.timeout = std::chrono::milliseconds(timeout_ms);
  return ttrpc::CallMethod<agentpb::CheckResponse>(client, kSvc, "Check", agentpb::CheckRequest(),
                                                   o);
}

struct Case {
  std::string personality;
  std::string model;  // file name under fixtures/sim
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.personality << " " << c.model; }

class RealAgentTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    std::string why = SkipReason();
    if (!why.empty()) GTEST_SKIP() << why;
    kernel_ = testing::WriteFile(dir_.path(), "vmlinux", "not a kernel");
  }
  bool Rest() const { return P() == "cloud-hypervisor" || P() == "firecracker"; }
  const std::string& P() const { return GetParam().personality; }
  std::string Api() const { return dir_.Sub("api.sock"); }
  std::string Vsock() const { return dir_.Sub("vsock.sock"); }
  std::string Serial() const { return dir_.Sub("agent.sock"); }
  std::string Model() const { return KUASAR_SIM_FIXTURES_DIR "/" + GetParam().model; }

  std::vector<std::string> Args() const {
    if (P() == "cloud-hypervisor") {
      return {"--api-socket", "path=" + Api(), "--cpus",   "boot=1",
              "--memory",     "size=128M",     "--kernel", kernel_,
              "--cmdline",    "console=hvc0",  "--vsock",  "cid=3,socket=" + Vsock()};
    }
    if (P() == "firecracker") return {"--api-sock", Api(), "--id", "pod-real"};
    bool qemu = P() == "qemu-system-x86_64";
    std::vector<std::string> a = {
        "-name",   "pod-real",     "-smp",    qemu ? "1" : "cpus=1",
        "-m",      "128M",         "-kernel", kernel_,
        "-append", "console=hvc0", "-qmp",    "unix:" + Api() + ",server,nowait"};
    a.insert(a.end(),
             {"-device", qemu ? "virtio-serial-pci,id=serial0" : "virtio-serial-device,id=serial0",
              "-chardev", "socket,id=agent,path=" + Serial() + ",server,nowait", "-device",
              "virtserialport,chardev=agent,id=channel0,name=agent.channel.0"});
    return a;
  }

  absl::StatusOr<FakeVmmProcess> Start(const std::vector<std::string>& sim_flags = {},
                                       const std::string& model = "") {
    FakeVmmOptions o;
    o.personality = P();
    o.args = Args();
    o.model = model.empty() ? Model() : model;
    o.agent = KUASAR_VMM_TASK_BIN;
    o.sim_flags = sim_flags;
    o.wait_socket = Api();
    o.log_file = dir_.Sub("vmm.log");
    return FakeVmmProcess::Start(o);
  }

  // Firecracker boots over its API; the others boot from their command line.
  void BootIfNeeded() {
    if (P() != "firecracker") return;
    auto put = [&](const std::string& path, const json& body) {
      auto r = testing::HttpCall(Api(), "PUT", path, body.dump());
      ASSERT_OK(r);
      ASSERT_EQ(r->status, 204) << path << ": " << r->body;
    };
    put("/boot-source", {{"kernel_image_path", kernel_}, {"boot_args", "console=ttyS0"}});
    put("/machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 128}});
    put("/vsock", {{"guest_cid", 3}, {"uds_path", Vsock()}});
    put("/actions", {{"action_type", "InstanceStart"}});
  }

  // The agent's ttrpc client once Check answers: CH/FC retry CONNECT 1024 while the
  // guest boots; QEMU/StratoVirt hold one connection to the chardev socket.
  std::unique_ptr<ttrpc::Client> ConnectAgent(int timeout_ms) {
    std::unique_ptr<ttrpc::Client> client;
    testing::WaitUntil(
        [&] {
          absl::StatusOr<UniqueFd> fd;
          if (Rest()) {
            std::string reply;
            fd = testing::HybridConnect(Vsock(), 1024, &reply);
            if (fd.ok() && reply.rfind("OK ", 0) != 0) return false;
          } else {
            fd = testing::ConnectUnix(Serial());
          }
          if (!fd.ok()) return false;
          auto c = ttrpc::Client::FromFd(std::move(*fd));
          if (!c.ok() || !Check(**c, 2000).ok()) return false;
          client = std::move(*c);
          return true;
        },
        timeout_ms);
    return client;
  }

  // Powers the guest off the VMM's way; the agent exits cleanly and the VMM with it.
  void PowerButton() {
    if (P() == "cloud-hypervisor") {
      auto r = testing::HttpCall(Api(), "PUT", "/api/v1/vm.power-button");
      ASSERT_OK(r);
      EXPECT_EQ(r->status, 204);
    } else if (P() == "firecracker") {
      auto r = testing::HttpCall(Api(), "PUT", "/actions", R"({"action_type":"SendCtrlAltDel"})");
      ASSERT_OK(r);
      EXPECT_EQ(r->status, 204);
    } else {
      auto qmp = QmpClient::Connect(Api());
      ASSERT_OK(qmp);
      ASSERT_OK(qmp->Negotiate());
      ASSERT_OK(qmp->Execute("system_powerdown"));
      auto ev = qmp->WaitEvent("SHUTDOWN", 15000);
      ASSERT_OK(ev);
      EXPECT_EQ((*ev)["data"]["reason"], "guest-shutdown");
    }
  }

  std::string kernel_;
  TempDir dir_{"simreal"};
};

TEST_P(RealAgentTest, BootCheckPowerOff) {
  auto t0 = Clock::now();
  auto vmm = Start();
  ASSERT_OK(vmm);
  BootIfNeeded();
  auto client = ConnectAgent(30000);
  ASSERT_NE(client, nullptr) << vmm->Log();
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  auto check = Check(*client, 5000);
  ASSERT_OK(check);
  EXPECT_FALSE(check->agent_version().empty());
  std::printf("[ boot ] personality=%s model=%s exec_to_agent_check_ms=%.1f\n", P().c_str(),
              GetParam().model.c_str(), ms);
  RecordProperty("exec_to_agent_check_ms", static_cast<int>(ms));
  std::vector<pid_t> agents = vmm->Children();
  ASSERT_EQ(agents.size(), 1u);

  PowerButton();
  auto st = vmm->WaitExit(20000);
  ASSERT_OK(st) << vmm->Log();
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << "status " << *st << "\n" << vmm->Log();
  EXPECT_FALSE(testing::ProcessAlive(agents[0]));
}

// A guest crash: the fault SIGKILLs the agent; CH/FC exit 1, QEMU reports guest-panic.
TEST_P(RealAgentTest, KillAgentFaultIsAGuestCrash) {
  std::string faults =
      testing::WriteFile(dir_.path(), "faults.toml", "[faults]\nkill_agent_after_ms = 2000\n");
  auto vmm = Start({"--faults", faults});
  ASSERT_OK(vmm);
  std::optional<QmpClient> qmp;
  if (!Rest()) {
    auto q = QmpClient::Connect(Api());
    ASSERT_OK(q);
    ASSERT_OK(q->Negotiate());
    qmp.emplace(std::move(*q));
  }
  BootIfNeeded();
  auto client = ConnectAgent(30000);
  ASSERT_NE(client, nullptr) << vmm->Log();
  if (qmp) {
    auto ev = qmp->WaitEvent("SHUTDOWN", 15000);
    ASSERT_OK(ev);
    EXPECT_EQ((*ev)["data"]["reason"], "guest-panic");
  }
  auto st = vmm->WaitExit(15000);
  ASSERT_OK(st) << vmm->Log();
  ASSERT_TRUE(WIFEXITED(*st)) << *st;
  EXPECT_EQ(WEXITSTATUS(*st), Rest() ? 1 : 0) << vmm->Log();
  EXPECT_FALSE(Check(*client, 2000).ok());
}

// The guest never reaches init: nothing answers on the channel, yet the VMM runs and
// shuts down on request.
TEST_P(RealAgentTest, HangBootFaultLeavesTheAgentUnreachable) {
  std::string faults =
      testing::WriteFile(dir_.path(), "faults.toml", "[faults]\nhang_boot = true\n");
  auto vmm = Start({"--faults", faults});
  ASSERT_OK(vmm);
  BootIfNeeded();
  EXPECT_EQ(ConnectAgent(1500), nullptr);
  EXPECT_TRUE(vmm->Children().empty());
  ASSERT_OK(vmm->Signal(SIGTERM));
  auto st = vmm->WaitExit(10000);
  ASSERT_OK(st) << vmm->Log();
}

// A client that retries while the guest boots (CH/FC: CONNECT closed; QEMU/StratoVirt: a
// Check that times out and hangs up) gets a clean channel once the agent is up: nothing
// a hung-up client wrote reaches the agent.
TEST_P(RealAgentTest, ClientRetriesWhileTheGuestBoots) {
  std::string model = testing::WriteFile(dir_.path(), "slow.toml",
                                         "[startup]\ndistribution = \"fixed\"\nms = 0\n"
                                         "[boot]\ndistribution = \"fixed\"\nms = 4500\n"
                                         "[checks]\nfiles = false\n");
  auto vmm = Start({}, model);
  ASSERT_OK(vmm);
  BootIfNeeded();
  auto client = ConnectAgent(30000);
  ASSERT_NE(client, nullptr) << vmm->Log();
  ASSERT_OK(Check(*client, 5000));
  PowerButton();
  auto st = vmm->WaitExit(20000);
  ASSERT_OK(st) << vmm->Log();
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << vmm->Log();
}

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  std::string n = info.param.personality + "_" + info.param.model;
  for (char& c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return n;
}

INSTANTIATE_TEST_SUITE_P(Personalities, RealAgentTest,
                         ::testing::Values(Case{"cloud-hypervisor", "ci-fast.toml"},
                                           Case{"firecracker", "ci-fast.toml"},
                                           Case{"qemu-system-x86_64", "ci-fast.toml"},
                                           Case{"stratovirt", "ci-fast.toml"}),
                         CaseName);

// The shipped latency models: boot to a Check answered, as a benchmark would see it.
class ModelledBootTest : public RealAgentTest {};
TEST_P(ModelledBootTest, BootCheckPowerOff) {
  auto t0 = Clock::now();
  auto vmm = Start();
  ASSERT_OK(vmm);
  BootIfNeeded();
  auto client = ConnectAgent(30000);
  ASSERT_NE(client, nullptr) << vmm->Log();
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  std::printf("[ boot ] personality=%s model=%s exec_to_agent_check_ms=%.1f\n", P().c_str(),
              GetParam().model.c_str(), ms);
  RecordProperty("exec_to_agent_check_ms", static_cast<int>(ms));
  PowerButton();
  auto st = vmm->WaitExit(20000);
  ASSERT_OK(st) << vmm->Log();
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << vmm->Log();
}

INSTANTIATE_TEST_SUITE_P(Shipped, ModelledBootTest,
                         ::testing::Values(Case{"cloud-hypervisor", "cloud-hypervisor.toml"},
                                           Case{"firecracker", "firecracker.toml"},
                                           Case{"qemu-system-x86_64", "qemu-system-x86_64.toml"},
                                           Case{"stratovirt", "stratovirt.toml"}),
                         CaseName);

}  // namespace
}  // namespace kuasar::sim
