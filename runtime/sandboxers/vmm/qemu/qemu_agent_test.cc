// Label "qemu": the real guest image (target kuasar-guest-image: the Debian cloud kernel
// and runtime/guest's vmm-task as PID 1) booted under TCG through QemuHypervisor, its
// agent reached with ttrpc on the virtio-serial socket exactly as the sandboxer does:
// kuasar.agent.v1.Sandbox/Check after boot, Stop/Kill/crash/Recover, and nothing left
// behind. Skips, naming the reason, without QEMU or an image that carries vmm-task.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iostream>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "kuasar/agent/v1/agent.pb.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/sandboxers/vmm/common/testing/leftovers.h"
#include "runtime/sandboxers/vmm/qemu/qemu_hypervisor.h"
#include "runtime/ttrpc/client.h"
#include "runtime/ttrpc/typed_client.h"

namespace kuasar::vmm {
namespace {

using ::kuasar::testing::StatusIs;
using ::kuasar::vmm::testing::FilesIn;
using ::kuasar::vmm::testing::ProcessesMentioning;
using ::testing::HasSubstr;
namespace agentpb = ::kuasar::agent::v1;

constexpr char kQemu[] = "/usr/bin/qemu-system-x86_64";
constexpr char kSandboxService[] = "kuasar.agent.v1.Sandbox";

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

// A ttrpc client on the agent's socket that has had an answer to Check.
struct Agent {
  std::unique_ptr<::kuasar::ttrpc::Client> client;
  agentpb::CheckResponse check;
};

// Dials the virtio-serial socket and calls Check until the agent answers: the sandboxer's
// own loop after WaitReady (one host client at a time; a failed try closes its end).
absl::StatusOr<Agent> DialAndCheck(const std::string& socket, absl::Time deadline) {
  absl::Status last = absl::UnavailableError("no attempt");
  while (absl::Now() < deadline) {
    auto client = ::kuasar::ttrpc::Client::Connect(socket);
    if (client.ok()) {
      ::kuasar::ttrpc::CallOptions o;
      o.timeout = std::chrono::seconds(3);
      auto check = ::kuasar::ttrpc::CallMethod<agentpb::CheckResponse>(
          **client, kSandboxService, "Check", agentpb::CheckRequest(), o);
      if (check.ok()) return Agent{std::move(*client), *check};
      last = check.status();
    } else {
      last = client.status();
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(
      absl::StrFormat("the agent did not answer Check on %s: %s", socket, last.message()));
}

class QemuAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kQemu, X_OK) != 0) {
      GTEST_SKIP() << kQemu << " missing: apt-get install qemu-system-x86";
    }
    if (auto missing = ReadSmallFile(image_ + "/MISSING"); missing.ok()) {
      GTEST_SKIP() << "no guest image in " << image_ << ": " << *missing;
    }
    auto manifest = ReadSmallFile(image_ + "/manifest.txt");
    if (::access((image_ + "/initramfs.img").c_str(), R_OK) != 0 || !manifest.ok()) {
      GTEST_SKIP() << "no guest image in " << image_ << ": build the kuasar-guest-image target";
    }
    if (absl::StrContains(*manifest, "placeholder-agent")) {
      GTEST_SKIP() << image_ << " carries the placeholder agent, not vmm-task "
                   << "(the vmm-task target did not exist when it was built)";
    }
    io_thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (HasFailure()) {
      for (const std::string& dir : state_dirs_) {
        auto console = ReadSmallFile(dir + "/console.log", 4 << 20);
        std::cerr << dir << "/console.log:\n" << (console.ok() ? *console : "(none)") << "\n";
      }
    }
    work_.reset();
    io_.stop();
    if (io_thread_.joinable()) io_thread_.join();
  }

  QemuConfig TcgConfig() const {
    QemuConfig c;
    c.qemu_path = kQemu;
    c.accel = Accel::kTcg;
    c.share_fs = ShareFs::kNone;
    c.kernel_path = image_ + "/vmlinuz";
    c.initrd_path = image_ + "/initramfs.img";
    return c;
  }
  VmConfig NewVm(const std::string& name) {
    VmConfig vm;
    vm.sandbox_id = absl::StrFormat("%s-%d", name, ::getpid());
    vm.state_dir = dir_.Sub(name);
    vm.socket_dir = dir_.Sub(name + ".s");
    ::mkdir(vm.state_dir.c_str(), 0700);
    ::mkdir(vm.socket_dir.c_str(), 0700);
    vm.kernel_path = image_ + "/vmlinuz";
    vm.initrd_path = image_ + "/initramfs.img";
    vm.memory_mib = 512;
    state_dirs_.push_back(vm.state_dir);
    return vm;
  }
  std::unique_ptr<QemuHypervisor> NewQemu() {
    return std::make_unique<QemuHypervisor>(TcgConfig(), Accel::kTcg, false, io_);
  }
  // Prepare + Launch + WaitReady + Check answered.
  absl::StatusOr<Agent> Boot(QemuHypervisor& qemu, const VmConfig& vm, const char* what) {
    absl::Time t0 = absl::Now();
    RETURN_IF_ERROR(qemu.Prepare(vm));
    RETURN_IF_ERROR(qemu.Launch());
    absl::Duration launched = absl::Now() - t0;
    ASSIGN_OR_RETURN(AgentChannel channel, qemu.WaitReady(t0 + absl::Seconds(120)));
    absl::Duration port_open = absl::Now() - t0;
    if (channel.kind != AgentChannel::Kind::kSerialSocket) {
      return absl::InternalError("the qemu driver's channel is not a serial socket");
    }
    ASSIGN_OR_RETURN(Agent agent, DialAndCheck(channel.path, absl::Now() + absl::Seconds(60)));
    std::cout << absl::StrFormat(
        "AGENT_TIMING %s tcg q35 launch_ms=%d port_open_ms=%d check_ms=%d "
        "guest_ready_after_boot_ms=%d\n",
        what, absl::ToInt64Milliseconds(launched), absl::ToInt64Milliseconds(port_open),
        absl::ToInt64Milliseconds(absl::Now() - t0), agent.check.ready_after_boot_ns() / 1000000);
    return agent;
  }
  // Nothing of the VM runs and none of its sockets or pid file remain.
  static void ExpectNothingLeft(const VmConfig& vm) {
    EXPECT_TRUE(ProcessesMentioning("kuasar-" + vm.sandbox_id).empty()) << "QEMU still runs";
    EXPECT_TRUE(ProcessesMentioning(vm.socket_dir).empty()) << "a helper still runs";
    EXPECT_TRUE(FilesIn(vm.socket_dir).empty()) << absl::StrJoin(FilesIn(vm.socket_dir), " ");
    EXPECT_NE(::access((vm.state_dir + "/qemu.pid").c_str(), F_OK), 0);
  }

  std::string image_ = KUASAR_REAL_GUEST_DIR;
  TempDir dir_{"kqa"};
  std::vector<std::string> state_dirs_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::thread io_thread_;
};

TEST_F(QemuAgentTest, BootsToAgentCheckAndStopsCleanly) {
  auto qemu = NewQemu();
  VmConfig vm = NewVm("check");
  ExitRecorder exit;
  qemu->SetExitCallback(exit.Callback());
  auto agent = Boot(*qemu, vm, "vmm-task");
  ASSERT_OK(agent);
  EXPECT_FALSE(agent->check.agent_version().empty());
  EXPECT_THAT(agent->check.kernel_release(), HasSubstr("cloud-amd64"));
  EXPECT_GT(agent->check.ready_after_boot_ns(), 0);
  EXPECT_EQ(*qemu->RunState(), "running");
  struct stat st {};
  ASSERT_EQ(::stat((image_ + "/initramfs.img").c_str(), &st), 0);
  std::cout << absl::StrFormat("IMAGE_BYTES initramfs=%d\n", st.st_size);

  absl::Time t = absl::Now();
  ASSERT_OK(qemu->Stop(absl::Seconds(20)));
  std::cout << absl::StrFormat("STOP_TIMING vmm-task powerdown_ms=%d\n",
                               absl::ToInt64Milliseconds(absl::Now() - t));
  ASSERT_TRUE(exit.done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(exit.exit.requested);
  // vmm-task powered the guest off on the ACPI button; QEMU was not made to quit.
  EXPECT_EQ(exit.exit.reason, "guest-shutdown");
  EXPECT_EQ(exit.exit.ExitStatus(), 0u);
  EXPECT_FALSE(agent->client->IsConnected());
  agent->client.reset();
  ExpectNothingLeft(vm);
  EXPECT_OK(qemu->Stop(absl::Seconds(1)));  // again: nothing to do
}

TEST_F(QemuAgentTest, KillEndsTheVmAndReportsIt) {
  auto qemu = NewQemu();
  VmConfig vm = NewVm("kill");
  ExitRecorder exit;
  qemu->SetExitCallback(exit.Callback());
  auto agent = Boot(*qemu, vm, "kill");
  ASSERT_OK(agent);
  ASSERT_OK(qemu->Kill());
  ASSERT_TRUE(exit.done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(exit.exit.requested);
  EXPECT_EQ(exit.exit.ExitStatus(), 137u);
  agent->client.reset();
  ExpectNothingLeft(vm);
}

TEST_F(QemuAgentTest, ACrashedVmmIsReportedAndCleanedUp) {
  auto qemu = NewQemu();
  VmConfig vm = NewVm("crash");
  ExitRecorder exit;
  qemu->SetExitCallback(exit.Callback());
  auto agent = Boot(*qemu, vm, "crash");
  ASSERT_OK(agent);
  ASSERT_EQ(::kill(qemu->Identity()->pid, SIGKILL), 0);  // not through the driver
  ASSERT_TRUE(exit.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(exit.exit.requested);
  EXPECT_EQ(exit.exit.ExitStatus(), 137u);
  EXPECT_EQ(exit.exit.reason, "killed by signal 9");
  agent->client.reset();
  EXPECT_OK(qemu->Stop(absl::Seconds(1)));  // what the sandboxer does next
  ExpectNothingLeft(vm);
}

TEST_F(QemuAgentTest, AGuestThatPowersItselfOffIsReportedAsUnrequested) {
  auto qemu = NewQemu();
  VmConfig vm = NewVm("selfoff");
  ExitRecorder exit;
  qemu->SetExitCallback(exit.Callback());
  auto agent = Boot(*qemu, vm, "selfoff");
  ASSERT_OK(agent);
  ::kuasar::ttrpc::CallOptions o;
  o.timeout = std::chrono::seconds(10);
  // Sandbox.Shutdown: the agent stops and powers off; the driver did not ask for it.
  (void)agent->client->Call(kSandboxService, "Shutdown", "", o);
  ASSERT_TRUE(exit.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_FALSE(exit.exit.requested);
  EXPECT_EQ(exit.exit.reason, "guest-shutdown");
  EXPECT_EQ(exit.exit.ExitStatus(), 0u);
  agent->client.reset();
  EXPECT_OK(qemu->Stop(absl::Seconds(1)));
  ExpectNothingLeft(vm);
}

TEST_F(QemuAgentTest, RecoverReattachesAndTheAgentAnswersAgain) {
  VmConfig vm = NewVm("recover");
  nlohmann::json state;
  pid_t pid;
  {
    auto qemu = NewQemu();
    auto agent = Boot(*qemu, vm, "recover");
    ASSERT_OK(agent);
    state = qemu->PersistedState();
    pid = qemu->Identity()->pid;
  }  // the sandboxer "restarts": its connection drops, the VM must live on
  ASSERT_EQ(::kill(pid, 0), 0);
  auto qemu = NewQemu();
  ExitRecorder exit;
  qemu->SetExitCallback(exit.Callback());
  ASSERT_OK(qemu->Recover(state));
  EXPECT_EQ(qemu->Identity()->pid, pid);
  EXPECT_EQ(*qemu->RunState(), "running");
  auto channel = qemu->WaitReady(absl::Now() + absl::Seconds(1));
  ASSERT_OK(channel);
  // The agent reopens its port after the host end went away and serves the new one.
  auto agent = DialAndCheck(channel->path, absl::Now() + absl::Seconds(30));
  ASSERT_OK(agent);
  EXPECT_GT(agent->check.uptime_ns(), agent->check.ready_after_boot_ns());
  ASSERT_OK(qemu->Stop(absl::Seconds(20)));
  ASSERT_TRUE(exit.done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(exit.exit.requested);
  EXPECT_EQ(exit.exit.reason, "guest-shutdown");
  agent->client.reset();
  ExpectNothingLeft(vm);
  EXPECT_THAT(NewQemu()->Recover(state), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace kuasar::vmm
