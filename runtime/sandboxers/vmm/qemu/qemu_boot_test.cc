// Label "qemu": boots real guests under TCG with the placeholder agent image (target
// kuasar-guest-image-placeholder). Skips, naming the reason, without QEMU or the image.
// qemu_agent_test.cc boots the image with the real agent.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/child_process.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/sandboxers/vmm/common/kvm_probe.h"
#include "runtime/sandboxers/vmm/common/testing/leftovers.h"
#include "runtime/sandboxers/vmm/qemu/qemu_factory.h"
#include "runtime/sandboxers/vmm/qemu/qemu_hypervisor.h"

namespace kuasar::vmm {
namespace {

using ::kuasar::testing::StatusIs;
using ::kuasar::vmm::testing::ProcessesMentioning;
using ::testing::HasSubstr;

constexpr char kQemu[] = "/usr/bin/qemu-system-x86_64";
constexpr char kVirtiofsd[] = "/usr/lib/qemu/virtiofsd";

// The placeholder agent's line protocol (fixtures/guest/placeholder-agent.sh).
class AgentLine {
 public:
  static absl::StatusOr<AgentLine> Connect(const std::string& path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      return ErrnoStatus(errno, "connect", path);
    }
    return AgentLine(std::move(fd));
  }
  // Sends `line`, reads until the answer holds `until`.
  absl::StatusOr<std::string> Ask(std::string_view line, std::string_view until,
                                  absl::Duration timeout = absl::Seconds(15)) {
    std::string msg = absl::StrFormat("%s\n", line);
    if (::send(fd_.get(), msg.data(), msg.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(msg.size())) {
      return ErrnoStatus(errno, "send", "agent");
    }
    std::string got;
    absl::Time deadline = absl::Now() + timeout;
    while (got.find(until) == std::string::npos) {
      pollfd p{fd_.get(), POLLIN, 0};
      int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
      if (left <= 0 || ::poll(&p, 1, left) <= 0) {
        return absl::DeadlineExceededError(absl::StrFormat("agent: no '%s' in '%s'", until, got));
      }
      char buf[4096];
      ssize_t n = ::read(fd_.get(), buf, sizeof(buf));
      if (n <= 0) return absl::UnavailableError(absl::StrFormat("agent closed after '%s'", got));
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }

 private:
  explicit AgentLine(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

absl::Status RunTool(const std::vector<std::string>& argv) {
  ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(argv));
  ASSIGN_OR_RETURN(int status, child.Wait());
  if (ExitCodeFromWaitStatus(status) != 0) {
    return absl::InternalError(absl::StrFormat("%s failed", argv[0]));
  }
  return absl::OkStatus();
}

// Asks the agent until its answer holds `want` (the guest reacts to hotplug in its time).
bool Eventually(AgentLine& agent, const std::string& ask, const std::string& want,
                absl::Duration timeout = absl::Seconds(20)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    auto got = agent.Ask(ask, "exit ");
    if (got.ok() && got->find(want) != std::string::npos) return true;
    absl::SleepFor(absl::Milliseconds(200));
  }
  return false;
}

struct ExitRecorder {
  absl::Notification done;
  VmExit exit;
  Hypervisor::ExitCallback Callback() {
    return [this](const VmExit& e) {
      exit = e;
      done.Notify();
    };
  }
};

class QemuBootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kQemu, X_OK) != 0)
      GTEST_SKIP() << kQemu << " missing: apt-get install qemu-system-x86";
    if (::access((guest_ + "/initramfs.img").c_str(), R_OK) != 0) {
      auto why = ReadSmallFile(guest_ + "/MISSING");
      GTEST_SKIP() << "no guest image in " << guest_ << ": "
                   << (why.ok() ? *why : "build the kuasar-guest-image-placeholder target");
    }
    io_thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    work_.reset();
    io_.stop();
    if (io_thread_.joinable()) io_thread_.join();
  }

  QemuConfig TcgConfig() {
    QemuConfig c;
    c.qemu_path = kQemu;
    c.accel = Accel::kTcg;
    c.share_fs = ShareFs::kNone;
    c.kernel_path = guest_ + "/vmlinuz";
    c.initrd_path = guest_ + "/initramfs.img";
    c.kvm_probe_cache = dir_.Sub("kvm-probe.json");
    return c;
  }
  VmConfig NewVm(const std::string& name) {
    VmConfig vm;
    vm.sandbox_id = absl::StrFormat("%s-%d", name, ::getpid());
    vm.state_dir = dir_.Sub(name);
    vm.socket_dir = dir_.Sub(name + ".s");
    ::mkdir(vm.state_dir.c_str(), 0700);
    ::mkdir(vm.socket_dir.c_str(), 0700);
    vm.kernel_path = guest_ + "/vmlinuz";
    vm.initrd_path = guest_ + "/initramfs.img";
    vm.memory_mib = 256;
    return vm;
  }
  std::unique_ptr<QemuHypervisor> NewQemu(const QemuConfig& c) {
    return std::make_unique<QemuHypervisor>(c, Accel::kTcg, false, io_);
  }

  std::string guest_ = KUASAR_GUEST_DIR;
  TempDir dir_{"kqb"};
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::thread io_thread_;
};

TEST_F(QemuBootTest, BootsToTheAgentAndPowersDownWithinTheTimeout) {
  auto qemu = NewQemu(TcgConfig());
  VmConfig vm = NewVm("boot");
  ExitRecorder exit;
  qemu->SetExitCallback(exit.Callback());
  ASSERT_OK(qemu->Prepare(vm));
  absl::Time t0 = absl::Now();
  ASSERT_OK(qemu->Launch());
  absl::Duration launched = absl::Now() - t0;
  auto channel = qemu->WaitReady(t0 + absl::Seconds(60));
  ASSERT_OK(channel);
  absl::Duration ready = absl::Now() - t0;
  EXPECT_EQ(channel->kind, AgentChannel::Kind::kSerialSocket);
  EXPECT_TRUE(channel->TaskAddress().empty());
  auto agent = AgentLine::Connect(channel->path);
  ASSERT_OK(agent);
  ASSERT_OK(agent->Ask("ping", "pong"));
  absl::Duration answered = absl::Now() - t0;
  EXPECT_EQ(*qemu->RunState(), "running");
  std::cout << absl::StrFormat("BOOT_TIMING tcg q35 launch_ms=%d agent_open_ms=%d pong_ms=%d\n",
                               absl::ToInt64Milliseconds(launched),
                               absl::ToInt64Milliseconds(ready),
                               absl::ToInt64Milliseconds(answered));

  absl::Time t1 = absl::Now();
  ASSERT_OK(qemu->Stop(absl::Seconds(15)));
  absl::Duration stopped = absl::Now() - t1;
  std::cout << absl::StrFormat("STOP_TIMING powerdown_ms=%d\n", absl::ToInt64Milliseconds(stopped));
  ASSERT_TRUE(exit.done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(exit.exit.requested);
  // Powered off by the guest on the ACPI button within Stop's timeout, not made to quit.
  EXPECT_EQ(exit.exit.reason, "guest-shutdown");
  EXPECT_EQ(exit.exit.ExitStatus(), 0u);
  EXPECT_TRUE(ProcessesMentioning("kuasar-" + vm.sandbox_id).empty());
  EXPECT_NE(::access((vm.socket_dir + "/qmp.sock").c_str(), F_OK), 0);
  EXPECT_THAT(*ReadSmallFile(vm.state_dir + "/console.log"), HasSubstr("READY agent.channel.0"));
  EXPECT_OK(qemu->Stop(absl::Seconds(1)));  // again: nothing to do
}

// microvm is not in the loop: without HPET or a PM timer, its kernel's TSC calibration
// against the PIT fails when the host is loaded and the boot stalls (docs/guest-image.md).
TEST_F(QemuBootTest, PcBootsAndPowersDownToo) {
  for (const char* machine : {"pc"}) {
    SCOPED_TRACE(machine);
    QemuConfig config = TcgConfig();
    config.machine_type = machine;
    auto qemu = NewQemu(config);
    VmConfig vm = NewVm(machine);
    ExitRecorder exit;
    qemu->SetExitCallback(exit.Callback());
    ASSERT_OK(qemu->Prepare(vm));
    absl::Time t0 = absl::Now();
    ASSERT_OK(qemu->Launch());
    ASSERT_OK(qemu->WaitReady(t0 + absl::Seconds(60)));
    std::cout << absl::StrFormat("BOOT_TIMING tcg %s agent_open_ms=%d\n", machine,
                                 absl::ToInt64Milliseconds(absl::Now() - t0));
    auto agent = AgentLine::Connect(qemu->agent_channel().path);
    ASSERT_OK(agent);
    ASSERT_OK(agent->Ask("ping", "pong"));
    ASSERT_OK(qemu->Stop(absl::Seconds(15)));
    ASSERT_TRUE(exit.done.WaitForNotificationWithTimeout(absl::Seconds(5)));
    EXPECT_EQ(exit.exit.reason, "guest-shutdown");
  }
}

TEST_F(QemuBootTest, SharesADirectoryOverVirtiofsAndKills) {
  if (::access(kVirtiofsd, X_OK) != 0) GTEST_SKIP() << kVirtiofsd << " missing";
  QemuConfig config = TcgConfig();
  config.share_fs = ShareFs::kVirtioFs;
  auto qemu = NewQemu(config);
  VmConfig vm = NewVm("share");
  std::string shared = dir_.Sub("shared");
  ::mkdir(shared.c_str(), 0755);
  ASSERT_OK(WriteFileAtomically(shared + "/hello.txt", "hello from the host\n", 0644));
  vm.shared_dir = SharedDir{shared, "kuasar", false};
  ExitRecorder exit;
  qemu->SetExitCallback(exit.Callback());
  ASSERT_OK(qemu->Prepare(vm));
  ASSERT_OK(qemu->Launch());
  ASSERT_OK(qemu->WaitReady(absl::Now() + absl::Seconds(60)));
  auto agent = AgentLine::Connect(qemu->agent_channel().path);
  ASSERT_OK(agent);
  auto text = agent->Ask("cat /run/kuasar/shared/hello.txt", "eof");
  ASSERT_OK(text);
  EXPECT_THAT(*text, HasSubstr("hello from the host"));
  ASSERT_OK(agent->Ask("run touch /run/kuasar/shared/from-guest", "exit 0"));
  EXPECT_EQ(::access((shared + "/from-guest").c_str(), F_OK), 0);

  ASSERT_OK(qemu->Kill());
  ASSERT_TRUE(exit.done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(exit.exit.requested);
  EXPECT_EQ(exit.exit.ExitStatus(), 137u);
  EXPECT_TRUE(ProcessesMentioning(vm.socket_dir).empty()) << "QEMU or virtiofsd left running";
}

TEST_F(QemuBootTest, RecoverReattachesToARunningVm) {
  VmConfig vm = NewVm("recover");
  nlohmann::json state;
  pid_t pid;
  {
    auto qemu = NewQemu(TcgConfig());
    ASSERT_OK(qemu->Prepare(vm));
    ASSERT_OK(qemu->Launch());
    ASSERT_OK(qemu->WaitReady(absl::Now() + absl::Seconds(60)));
    state = qemu->PersistedState();
    pid = qemu->Identity()->pid;
  }  // the sandboxer "restarts": the VM must live on
  ASSERT_EQ(::kill(pid, 0), 0);
  auto qemu = NewQemu(TcgConfig());
  ExitRecorder exit;
  qemu->SetExitCallback(exit.Callback());
  ASSERT_OK(qemu->Recover(state));
  EXPECT_EQ(qemu->Identity()->pid, pid);
  ASSERT_OK(qemu->WaitReady(absl::Now() + absl::Seconds(1)));
  EXPECT_EQ(*qemu->RunState(), "running");
  auto agent = AgentLine::Connect(qemu->agent_channel().path);
  ASSERT_OK(agent);
  ASSERT_OK(agent->Ask("ping", "pong"));
  ASSERT_OK(qemu->Stop(absl::Seconds(15)));
  ASSERT_TRUE(exit.done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  // Reattached in the same process, QEMU is still our child: adopted back, reaped, its
  // status known. After a real restart it is not (wait_status -1; VmmProcessTest covers it).
  EXPECT_GE(exit.exit.wait_status, 0);
  EXPECT_EQ(exit.exit.ExitStatus(), 0u);
  EXPECT_EQ(exit.exit.reason, "guest-shutdown");
  EXPECT_TRUE(ProcessesMentioning("kuasar-" + vm.sandbox_id).empty());

  auto again = NewQemu(TcgConfig());
  EXPECT_THAT(again->Recover(state), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(QemuBootTest, ReportsAVmThatDiesOnItsOwn) {
  auto qemu = NewQemu(TcgConfig());
  VmConfig vm = NewVm("crash");
  ExitRecorder exit;
  qemu->SetExitCallback(exit.Callback());
  ASSERT_OK(qemu->Prepare(vm));
  ASSERT_OK(qemu->Launch());
  ASSERT_EQ(::kill(qemu->Identity()->pid, SIGKILL), 0);
  ASSERT_TRUE(exit.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(exit.exit.requested);
  EXPECT_EQ(exit.exit.ExitStatus(), 137u);
  EXPECT_THAT(qemu->WaitReady(absl::Now() + absl::Seconds(1)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("console.log")));
  EXPECT_OK(qemu->Stop(absl::Seconds(1)));  // tolerates a dead VM
}

TEST_F(QemuBootTest, AGuestPanicEndsTheVmWithItsConsoleInTheError) {
  auto qemu = NewQemu(TcgConfig());
  VmConfig vm = NewVm("panic");
  vm.kernel_params = "rdinit=/nonexistent";
  ExitRecorder exit;
  qemu->SetExitCallback(exit.Callback());
  ASSERT_OK(qemu->Prepare(vm));
  ASSERT_OK(qemu->Launch());
  auto ready = qemu->WaitReady(absl::Now() + absl::Seconds(60));
  EXPECT_THAT(ready, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("Kernel panic")));
  ASSERT_TRUE(exit.done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_FALSE(exit.exit.requested);
  EXPECT_OK(qemu->Stop(absl::Seconds(1)));
}

TEST_F(QemuBootTest, LaunchFailureNamesTheCause) {
  QemuConfig config = TcgConfig();
  config.extra_args = {"-device", "no-such-device-model"};
  auto qemu = NewQemu(config);
  VmConfig vm = NewVm("fail");
  ASSERT_OK(qemu->Prepare(vm));
  EXPECT_THAT(qemu->Launch(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no-such-device-model")));
  EXPECT_TRUE(ProcessesMentioning("kuasar-" + vm.sandbox_id).empty());
}

TEST_F(QemuBootTest, HotplugsNetsAndDisksInThePodNetns) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a network namespace and taps";
  std::string ns = absl::StrFormat("kqb-%d", ::getpid());
  if (!RunTool({"ip", "netns", "add", ns}).ok()) GTEST_SKIP() << "ip netns add failed";
  struct Cleanup {
    std::string ns;
    ~Cleanup() { (void)RunTool({"ip", "netns", "delete", ns}); }
  } cleanup{ns};
  ASSERT_OK(RunTool({"ip", "-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap"}));
  ASSERT_OK(RunTool({"ip", "-n", ns, "tuntap", "add", "dev", "tap1", "mode", "tap"}));
  auto qemu = NewQemu(TcgConfig());
  VmConfig vm = NewVm("hotplug");
  vm.netns_path = "/run/netns/" + ns;
  vm.nets.push_back({"eth0", "tap0", "52:54:00:00:00:01"});
  ASSERT_OK(qemu->Prepare(vm));
  ASSERT_OK(qemu->Launch());
  ASSERT_OK(qemu->WaitReady(absl::Now() + absl::Seconds(60)));
  auto agent = AgentLine::Connect(qemu->agent_channel().path);
  ASSERT_OK(agent);
  EXPECT_TRUE(Eventually(*agent, "run cat /sys/class/net/eth0/address", "52:54:00:00:00:01"));

  absl::Time t = absl::Now();
  ASSERT_OK(qemu->AddNet({"net1", "tap1", "52:54:00:00:00:02"}));
  EXPECT_TRUE(Eventually(*agent, "run cat /sys/class/net/eth1/address", "52:54:00:00:00:02"));
  std::cout << absl::StrFormat("HOTPLUG_TIMING net ms=%d\n",
                               absl::ToInt64Milliseconds(absl::Now() - t));
  t = absl::Now();
  std::string disk = dir_.Sub("disk.img");
  { std::ofstream(disk).seekp((1 << 20) - 1).put('\0'); }
  ASSERT_OK(qemu->AddDisk({"disk1", disk, "raw", false}));
  EXPECT_TRUE(Eventually(*agent, "run cat /sys/block/vda/size", "2048"));
  std::cout << absl::StrFormat("HOTPLUG_TIMING disk ms=%d\n",
                               absl::ToInt64Milliseconds(absl::Now() - t));
  auto state = qemu->PersistedState();
  EXPECT_TRUE(state["hotplugged"].contains("net1"));
  EXPECT_TRUE(state["hotplugged"].contains("disk1"));
  EXPECT_THAT(qemu->AddDisk({"disk2", disk, "raw", true}),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("pcie_root_ports")));
  EXPECT_THAT(qemu->AddNet({"net1", "tap1", ""}), StatusIs(absl::StatusCode::kAlreadyExists));

  t = absl::Now();
  ASSERT_OK(qemu->RemoveDisk("disk1"));
  ASSERT_OK(qemu->RemoveNet("net1"));
  std::cout << absl::StrFormat("UNPLUG_TIMING two devices ms=%d\n",
                               absl::ToInt64Milliseconds(absl::Now() - t));
  EXPECT_TRUE(Eventually(*agent, "run ls /sys/class/net", "eth0"));
  auto nets = agent->Ask("run ls /sys/class/net", "exit ");
  EXPECT_THAT(*nets, ::testing::Not(HasSubstr("eth1")));
  EXPECT_FALSE(qemu->PersistedState()["hotplugged"].contains("net1"));
  ASSERT_OK(qemu->Stop(absl::Seconds(15)));
}

TEST_F(QemuBootTest, MeasuresBootPhases) {
  QemuConfig config = TcgConfig();
  config.debug = true;  // kernel messages with timestamps on the console
  auto qemu = NewQemu(config);
  VmConfig vm = NewVm("phases");
  ASSERT_OK(qemu->Prepare(vm));
  absl::Time t0 = absl::Now();
  ASSERT_OK(qemu->Launch());
  absl::Duration launched = absl::Now() - t0;
  ASSERT_OK(qemu->WaitReady(t0 + absl::Seconds(60)));
  absl::Duration ready = absl::Now() - t0;
  std::string console = *ReadSmallFile(vm.state_dir + "/console.log");
  double init_at = -1;
  if (size_t run = console.find("Run /init as init process"); run != std::string::npos) {
    size_t open = console.rfind('[', run);
    init_at = std::atof(console.c_str() + open + 1);
  }
  std::cout << absl::StrFormat(
      "BOOT_PHASES tcg q35 qemu_to_qmp_ms=%d kernel_to_init_s=%.3f agent_open_ms=%d\n",
      absl::ToInt64Milliseconds(launched), init_at, absl::ToInt64Milliseconds(ready));
  EXPECT_GT(init_at, 0) << console;
  ASSERT_OK(qemu->Stop(absl::Seconds(15)));
}

TEST_F(QemuBootTest, FactoryResolvesAutoAccelWithTheProbe) {
  QemuConfig config = TcgConfig();
  config.accel = Accel::kAuto;
  config.kvm_probe_timeout = absl::Seconds(4);
  auto factory = QemuHypervisorFactory::Create(config, io_);
  ASSERT_OK(factory);
  std::cout << "accel=" << AccelName((*factory)->accel()) << " because "
            << (*factory)->accel_reason() << "\n";
  KvmProbeOptions probe;
  probe.qemu_path = config.qemu_path;
  probe.kernel_path = config.kernel_path;
  probe.initrd_path = config.initrd_path;
  probe.cache_path = config.kvm_probe_cache;
  auto cached = ProbeKvm(probe);
  ASSERT_OK(cached);
  EXPECT_TRUE(cached->from_cache);
  EXPECT_EQ((*factory)->accel(), cached->usable ? Accel::kKvm : Accel::kTcg);
  VmConfig defaults = (*factory)->DefaultVmConfig();
  EXPECT_EQ(defaults.kernel_path, config.kernel_path);
  EXPECT_EQ(defaults.memory_mib, 512u);
  EXPECT_NE((*factory)->New(), nullptr);
}

}  // namespace
}  // namespace kuasar::vmm
