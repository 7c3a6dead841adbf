// Label "libvirt": the real guest image (kuasar-guest-image: the Debian cloud kernel and
// runtime/guest's vmm-task as PID 1) booted under TCG as a libvirt domain, through a
// libvirtd this test starts itself (testing/private_libvirtd.h) and stops at the end. The
// agent is reached with ttrpc on the virtio-serial socket as the sandboxer does; then Stop,
// Kill, a domain killed or destroyed from outside, Recover by a new driver object, and a
// virtio-fs share (libvirt runs virtiofsd). Skips, with the reason, when libvirtd cannot
// run here or the image lacks vmm-task.
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
#include "runtime/base/atomic_file.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/sandboxers/vmm/common/testing/leftovers.h"
#include "runtime/sandboxers/vmm/conformance/agent_dial.h"
#include "runtime/sandboxers/vmm/libvirt/libvirt_hypervisor.h"
#include "runtime/sandboxers/vmm/libvirt/testing/private_libvirtd.h"

namespace kuasar::vmm {
namespace {

using ::kuasar::testing::StatusIs;
using ::kuasar::vmm::testing::FilesIn;
using ::kuasar::vmm::testing::PrivateLibvirtd;
using ::kuasar::vmm::testing::ProcessesMentioning;
using ::testing::HasSubstr;

constexpr char kQemu[] = "/usr/bin/qemu-system-x86_64";

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

class LibvirtBootTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::access(kQemu, X_OK) != 0) {
      *skip_ = absl::StrFormat("%s missing: apt-get install qemu-system-x86", kQemu);
      return;
    }
    root_ = new TempDir("klvd");
    auto daemon = PrivateLibvirtd::Start(root_->path());
    if (!daemon.ok()) {
      *skip_ = absl::StrFormat("libvirtd cannot run here: %s", daemon.status().message());
      return;
    }
    daemon_ = daemon->release();
  }
  static void TearDownTestSuite() {
    delete daemon_;  // stops libvirtd
    daemon_ = nullptr;
    delete root_;
    root_ = nullptr;
  }

  void SetUp() override {
    if (!skip_->empty()) GTEST_SKIP() << *skip_;
    if (auto missing = ReadSmallFile(image_ + "/MISSING"); missing.ok()) {
      GTEST_SKIP() << "no guest image in " << image_ << ": " << *missing;
    }
    auto manifest = ReadSmallFile(image_ + "/manifest.txt");
    if (::access((image_ + "/initramfs.img").c_str(), R_OK) != 0 || !manifest.ok()) {
      GTEST_SKIP() << "no guest image in " << image_ << ": build the kuasar-guest-image target";
    }
    if (absl::StrContains(*manifest, "placeholder-agent")) {
      GTEST_SKIP() << image_ << " carries the placeholder agent, not vmm-task";
    }
    io_thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    for (auto& h : drivers_) (void)h->Kill();  // a failed test leaves no domain behind
    if (HasFailure()) {
      for (const auto& [dir, domain] : vms_) {
        auto console = ReadSmallFile(dir + "/console.log", 4 << 20);
        std::cerr << dir << "/console.log:\n" << (console.ok() ? *console : "(none)") << "\n";
        auto qemu = ReadSmallFile(daemon_->QemuLog(domain), 1 << 20);
        std::cerr << "libvirt's QEMU log:\n" << (qemu.ok() ? *qemu : "(none)") << "\n";
      }
      auto log = ReadSmallFile(daemon_->daemon_log(), 1 << 20);
      std::cerr << "libvirtd.log:\n" << (log.ok() ? *log : "(none)") << "\n";
    }
    drivers_.clear();
    work_.reset();
    io_.stop();
    if (io_thread_.joinable()) io_thread_.join();
  }

  LibvirtConfig TcgConfig() const {
    LibvirtConfig c;
    c.uri = daemon_->uri();
    c.qemu_path = kQemu;
    c.accel = Accel::kTcg;
    c.share_fs = ShareFs::kVirtioFs;
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
    vms_.emplace_back(vm.state_dir, "kuasar-" + vm.sandbox_id);
    return vm;
  }
  // Owned by the test; TearDown kills what is left.
  LibvirtHypervisor& NewDriver() {
    drivers_.push_back(std::make_unique<LibvirtHypervisor>(TcgConfig(), Accel::kTcg, io_));
    return *drivers_.back();
  }
  // Prepare + Launch + WaitReady + Check answered; prints the phases.
  absl::Status Boot(LibvirtHypervisor& h, const VmConfig& vm, const char* what) {
    absl::Time t0 = absl::Now();
    RETURN_IF_ERROR(h.Prepare(vm));
    RETURN_IF_ERROR(h.Launch());
    absl::Duration launched = absl::Now() - t0;
    ASSIGN_OR_RETURN(AgentChannel channel, h.WaitReady(t0 + absl::Seconds(120)));
    absl::Duration port_open = absl::Now() - t0;
    if (channel.kind != AgentChannel::Kind::kSerialSocket) {
      return absl::InternalError("the libvirt driver's channel is not a serial socket");
    }
    ASSIGN_OR_RETURN(auto check, CheckAgent(channel, absl::Now() + absl::Seconds(60)));
    std::cout << absl::StrFormat(
        "LIBVIRT_AGENT_TIMING %s tcg q35 launch_ms=%d port_open_ms=%d check_ms=%d "
        "guest_ready_after_boot_ms=%d\n",
        what, absl::ToInt64Milliseconds(launched), absl::ToInt64Milliseconds(port_open),
        absl::ToInt64Milliseconds(absl::Now() - t0), check.ready_after_boot_ns() / 1000000);
    if (check.agent_version().empty()) return absl::InternalError("Check: no agent version");
    return absl::OkStatus();
  }
  // No QEMU, no virtiofsd, no socket left.
  static void ExpectNothingLeft(const VmConfig& vm) {
    EXPECT_TRUE(ProcessesMentioning("guest=kuasar-" + vm.sandbox_id).empty()) << "QEMU still runs";
    EXPECT_TRUE(ProcessesMentioning(vm.state_dir).empty()) << "a helper still runs";
    EXPECT_TRUE(FilesIn(vm.socket_dir).empty()) << absl::StrJoin(FilesIn(vm.socket_dir), " ");
  }
  // What `virsh destroy` does: another client of the same libvirtd.
  static absl::Status DestroyFromOutside(const std::string& name) {
    ASSIGN_OR_RETURN(auto conn, LibvirtConnection::Open(daemon_->uri()));
    DomainHandle dom(virDomainLookupByName(conn->get(), name.c_str()));
    if (!dom) return LibvirtError("virDomainLookupByName " + name);
    if (virDomainDestroy(dom.get()) < 0) return LibvirtError("virDomainDestroy " + name);
    return absl::OkStatus();
  }

  static inline std::string* skip_ = new std::string;
  static inline TempDir* root_ = nullptr;
  static inline PrivateLibvirtd* daemon_ = nullptr;

  std::string image_ = KUASAR_REAL_GUEST_DIR;
  TempDir dir_{"klv"};
  std::vector<std::pair<std::string, std::string>> vms_;  // state dir, domain name
  std::vector<std::unique_ptr<LibvirtHypervisor>> drivers_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::thread io_thread_;
};

TEST_F(LibvirtBootTest, BootsToAgentCheckAndStopsCleanly) {
  LibvirtHypervisor& h = NewDriver();
  VmConfig vm = NewVm("check");
  ExitRecorder exit;
  h.SetExitCallback(exit.Callback());
  ASSERT_OK(Boot(h, vm, "check"));
  EXPECT_EQ(*h.DomainState(), "running");
  ASSERT_TRUE(h.Identity().has_value());
  auto cmdline = ReadSmallFile(absl::StrFormat("/proc/%d/cmdline", h.Identity()->pid));
  ASSERT_OK(cmdline);
  EXPECT_THAT(*cmdline, HasSubstr("guest=" + h.domain_name()));
  std::map<std::string, std::string> info;
  h.Describe(&info);
  EXPECT_EQ(info["vmm"], "libvirt");
  EXPECT_EQ(info["vmm_pid"], absl::StrFormat("%d", h.Identity()->pid));

  absl::Time t = absl::Now();
  ASSERT_OK(h.Stop(absl::Seconds(20)));
  std::cout << absl::StrFormat("LIBVIRT_STOP_TIMING powerdown_ms=%d\n",
                               absl::ToInt64Milliseconds(absl::Now() - t));
  ASSERT_TRUE(exit.done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(exit.exit.requested);
  // vmm-task powered the guest off on the ACPI button; libvirt did not have to destroy it.
  EXPECT_EQ(exit.exit.reason, "guest-shutdown");
  EXPECT_EQ(exit.exit.ExitStatus(), 0u);
  ExpectNothingLeft(vm);
  EXPECT_THAT(h.DomainState().status(), StatusIs(absl::StatusCode::kNotFound));  // transient
  EXPECT_OK(h.Stop(absl::Seconds(1)));  // again: nothing to do
}

TEST_F(LibvirtBootTest, KillDestroysTheDomainAndReportsIt) {
  LibvirtHypervisor& h = NewDriver();
  VmConfig vm = NewVm("kill");
  ExitRecorder exit;
  h.SetExitCallback(exit.Callback());
  ASSERT_OK(Boot(h, vm, "kill"));
  ASSERT_OK(h.Kill());
  ASSERT_TRUE(exit.done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(exit.exit.requested);
  EXPECT_EQ(exit.exit.reason, "destroyed");
  EXPECT_EQ(exit.exit.ExitStatus(), 255u);  // libvirtd reaps QEMU: no wait status here
  ExpectNothingLeft(vm);
}

TEST_F(LibvirtBootTest, QemuKilledFromOutsideIsReported) {
  LibvirtHypervisor& h = NewDriver();
  VmConfig vm = NewVm("crash");
  ExitRecorder exit;
  h.SetExitCallback(exit.Callback());
  ASSERT_OK(Boot(h, vm, "crash"));
  ASSERT_EQ(::kill(h.Identity()->pid, SIGKILL), 0);  // not through the driver nor libvirt
  ASSERT_TRUE(exit.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(exit.exit.requested);
  EXPECT_EQ(exit.exit.reason, "emulator-failed");
  EXPECT_EQ(exit.exit.ExitStatus(), 255u);
  EXPECT_OK(h.Stop(absl::Seconds(1)));  // what the sandboxer does next
  ExpectNothingLeft(vm);
}

TEST_F(LibvirtBootTest, DomainDestroyedFromOutsideIsReported) {
  LibvirtHypervisor& h = NewDriver();
  VmConfig vm = NewVm("destroy");
  ExitRecorder exit;
  h.SetExitCallback(exit.Callback());
  ASSERT_OK(Boot(h, vm, "destroy"));
  ASSERT_OK(DestroyFromOutside(h.domain_name()));  // as `virsh destroy`
  ASSERT_TRUE(exit.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(exit.exit.requested);
  EXPECT_EQ(exit.exit.reason, "destroyed");
  EXPECT_OK(h.Stop(absl::Seconds(1)));
  ExpectNothingLeft(vm);
}

TEST_F(LibvirtBootTest, RecoverReattachesAndTheAgentAnswersAgain) {
  VmConfig vm = NewVm("recover");
  nlohmann::json state;
  ProcessIdentity qemu;
  {
    LibvirtHypervisor first(TcgConfig(), Accel::kTcg, io_);
    ASSERT_OK(Boot(first, vm, "recover"));
    state = first.PersistedState();
    qemu = *first.Identity();
  }  // the sandboxer "restarts": its connection closes, the domain must live on
  ASSERT_TRUE(IsSameProcessAlive(qemu));
  LibvirtHypervisor& h = NewDriver();
  ExitRecorder exit;
  h.SetExitCallback(exit.Callback());
  ASSERT_OK(h.Recover(state));
  EXPECT_EQ(h.Identity(), qemu);
  EXPECT_EQ(*h.DomainState(), "running");
  auto channel = h.WaitReady(absl::Now() + absl::Seconds(30));
  ASSERT_OK(channel);
  auto check = CheckAgent(*channel, absl::Now() + absl::Seconds(30));
  ASSERT_OK(check);
  EXPECT_GT(check->uptime_ns(), check->ready_after_boot_ns());
  ASSERT_OK(h.Stop(absl::Seconds(20)));
  ASSERT_TRUE(exit.done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(exit.exit.requested);
  EXPECT_EQ(exit.exit.reason, "guest-shutdown");
  ExpectNothingLeft(vm);
  EXPECT_THAT(NewDriver().Recover(state), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(LibvirtBootTest, SharesADirectoryOverVirtiofs) {
  LibvirtHypervisor& h = NewDriver();
  VmConfig vm = NewVm("share");
  vm.shared_dir = SharedDir{dir_.Sub("shared"), "kuasar", false};
  ASSERT_EQ(::mkdir(vm.shared_dir->host_path.c_str(), 0700), 0);
  ASSERT_OK(Boot(h, vm, "virtiofs"));
  // libvirt started virtiofsd for the share; it ends with the domain.
  EXPECT_FALSE(ProcessesMentioning(vm.shared_dir->host_path).empty()) << "no virtiofsd";
  ASSERT_OK(h.Stop(absl::Seconds(20)));
  ExpectNothingLeft(vm);
  EXPECT_TRUE(ProcessesMentioning(vm.shared_dir->host_path).empty()) << "virtiofsd still runs";
}

TEST_F(LibvirtBootTest, PrepareRefusesTapsInsideThePodNetns) {
  LibvirtHypervisor& h = NewDriver();
  VmConfig vm = NewVm("netns");
  vm.netns_path = "/var/run/netns/pod";
  vm.nets.push_back({"net0", "tap0", ""});
  EXPECT_THAT(h.Prepare(vm), StatusIs(absl::StatusCode::kFailedPrecondition,
                                      HasSubstr("mirror_network")));
}

}  // namespace
}  // namespace kuasar::vmm
