// The Hypervisor contract, run against the fake VMM (sim/, docs/fake-vmm.md) playing each
// VMM whose driver is here, with the real guest agent (vmm-task) behind it: Prepare,
// Launch, WaitReady, a ttrpc Check on kuasar.agent.v1.Sandbox over the agent channel,
// Stop, Kill with the exit callback, a crash seen by the callback, and Recover after the
// Hypervisor object is destroyed. Skips (with the reason) when the fake VMM or vmm-task
// is not built.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

#include "kuasar/agent/v1/agent.pb.h"
#include "runtime/base/process_identity.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/sandboxers/vmm/conformance/agent_dial.h"
#include "runtime/sandboxers/vmm/conformance/driver_under_test.h"

namespace kuasar::vmm {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

// Collects the exit callback's calls.
class ExitRecorder {
 public:
  Hypervisor::ExitCallback Callback() {
    return [this](const VmExit& e) {
      std::lock_guard<std::mutex> lock(mu_);
      exits_.push_back(e);
      cv_.notify_all();
    };
  }
  std::optional<VmExit> Wait(absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] { return !exits_.empty(); });
    if (exits_.empty()) return std::nullopt;
    return exits_.front();
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu_);
    return exits_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<VmExit> exits_;
};

class FakeVmmContractTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (std::string why = FakeVmmMissing(); !why.empty()) GTEST_SKIP() << why;
    setenv("KUASAR_AGENT", VmmTaskBinary().c_str(), 1);
    setenv("KUASAR_FAKE_VMM_SCALE", "0", 1);  // no modelled latency in tests
    io_thread_ = std::thread([this] { io_.run(); });
    std::ofstream(dir_.Sub("vmlinuz")) << "kernel";
    std::ofstream(dir_.Sub("initrd")) << "initrd";
    ::mkdir(dir_.Sub("state").c_str(), 0700);
    ASSERT_EQ(::symlink(FakeVmmBinary().c_str(), dir_.Sub(GetParam()).c_str()), 0);
    auto factory = MakeDriverFactory(GetParam(), dir_.Sub(GetParam()), dir_.Sub("vmlinuz"),
                                     dir_.Sub("initrd"), io_);
    ASSERT_OK(factory);
    factory_ = std::move(*factory);
    EXPECT_EQ(factory_->Kind(), GetParam());
  }
  void TearDown() override {
    if (hv_) (void)hv_->Kill();
    hv_.reset();
    factory_.reset();
    work_.reset();
    if (io_thread_.joinable()) io_thread_.join();
  }

  VmConfig Vm() const {
    VmConfig vm = factory_->DefaultVmConfig();
    vm.sandbox_id = "contract-1";
    vm.state_dir = dir_.Sub("state");
    vm.socket_dir = dir_.Sub("s");
    vm.memory_mib = 128;
    return vm;
  }

  // Prepare + Launch + WaitReady, with the exit callback set.
  void Boot() {
    hv_ = factory_->New();
    ASSERT_OK(hv_->Prepare(Vm()));
    hv_->SetExitCallback(exits_.Callback());
    ASSERT_OK(hv_->Launch());
    ASSERT_TRUE(hv_->Identity().has_value());
    auto channel = hv_->WaitReady(absl::Now() + absl::Seconds(20));
    ASSERT_OK(channel);
    channel_ = *channel;
  }

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      boost::asio::make_work_guard(io_)};
  std::thread io_thread_;
  TempDir dir_{"fvc"};
  std::unique_ptr<HypervisorFactory> factory_;
  std::unique_ptr<Hypervisor> hv_;
  AgentChannel channel_;
  ExitRecorder exits_;
};

TEST_P(FakeVmmContractTest, BootsAndTheAgentAnswersCheck) {
  ASSERT_NO_FATAL_FAILURE(Boot());
  ExpectAgentChannelKind(GetParam(), channel_, dir_.Sub("s"));
  auto check = CheckAgent(channel_, absl::Now() + absl::Seconds(20));
  ASSERT_OK(check);
  EXPECT_FALSE(check->agent_version().empty());
  std::map<std::string, std::string> info;
  hv_->Describe(&info);
  EXPECT_EQ(info["vmm"], GetParam());
  EXPECT_EQ(info["vmm_pid"], std::to_string(hv_->Identity()->pid));
  EXPECT_EQ(exits_.count(), 0u);
}

TEST_P(FakeVmmContractTest, StopPowersOffAndReportsARequestedExit) {
  ASSERT_NO_FATAL_FAILURE(Boot());
  // The guest is up (an ACPI button pressed before it is, is lost, as on real hardware).
  ASSERT_OK(CheckAgent(channel_, absl::Now() + absl::Seconds(20)));
  ProcessIdentity id = *hv_->Identity();
  absl::Time start = absl::Now();
  ASSERT_OK(hv_->Stop(absl::Seconds(10)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5)) << "the guest did not power off by itself";
  EXPECT_FALSE(IsSameProcessAlive(id));
  auto exit = exits_.Wait(absl::Seconds(5));
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->requested);
  EXPECT_EQ(exit->ExitStatus(), 0u) << exit->reason;
  ASSERT_OK(hv_->Stop(absl::Seconds(1)));  // tolerates a dead VM
}

TEST_P(FakeVmmContractTest, KillEndsTheVmAndCallsBack) {
  ASSERT_NO_FATAL_FAILURE(Boot());
  ProcessIdentity id = *hv_->Identity();
  ASSERT_OK(hv_->Kill());
  EXPECT_FALSE(IsSameProcessAlive(id));
  auto exit = exits_.Wait(absl::Seconds(5));
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->requested);
  EXPECT_EQ(exit->ExitStatus(), 128u + SIGKILL);
  EXPECT_THAT(CheckAgent(channel_, absl::Now() + absl::Milliseconds(300)),
              ::testing::Not(::kuasar::testing::IsOk()));
}

TEST_P(FakeVmmContractTest, ACrashIsReportedAsUnrequested) {
  ASSERT_NO_FATAL_FAILURE(Boot());
  ASSERT_EQ(::kill(hv_->Identity()->pid, SIGKILL), 0);
  auto exit = exits_.Wait(absl::Seconds(10));
  ASSERT_TRUE(exit.has_value());
  EXPECT_FALSE(exit->requested);
  EXPECT_THAT(exit->reason, HasSubstr("signal 9"));
}

TEST_P(FakeVmmContractTest, RecoversAfterTheDriverObjectIsGone) {
  ASSERT_NO_FATAL_FAILURE(Boot());
  nlohmann::json state = hv_->PersistedState();
  ProcessIdentity id = *hv_->Identity();
  hv_.reset();  // detaches: the VM keeps running
  ASSERT_TRUE(IsSameProcessAlive(id));
  EXPECT_EQ(exits_.count(), 0u);

  hv_ = factory_->New();
  ExitRecorder after;
  hv_->SetExitCallback(after.Callback());
  ASSERT_OK(hv_->Recover(state));
  EXPECT_EQ(hv_->Identity(), id);
  EXPECT_EQ(hv_->agent_channel().TaskAddress(), channel_.TaskAddress());
  ASSERT_OK(CheckAgent(hv_->agent_channel(), absl::Now() + absl::Seconds(10)));
  ASSERT_OK(hv_->Kill());
  auto exit = after.Wait(absl::Seconds(5));
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->requested);
  EXPECT_EQ(exits_.count(), 0u);  // the first object's callback is gone with it

  auto again = factory_->New();
  EXPECT_THAT(again->Recover(state), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(FakeVmmContractTest, RecoverRefusesForeignState) {
  hv_ = factory_->New();
  EXPECT_THAT(hv_->Recover(nlohmann::json{{"driver", "nope"}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(FakeVmmContractTest, LaunchFailureLeavesNothingRunning) {
  hv_ = factory_->New();
  VmConfig vm = Vm();
  ASSERT_OK(hv_->Prepare(vm));
  ::unlink(vm.kernel_path.c_str());  // the VMM refuses to boot a missing kernel
  absl::Status st = hv_->Launch();
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("contract-1"));
  if (auto id = hv_->Identity()) {
    EXPECT_FALSE(IsSameProcessAlive(*id));
  }
}

TEST_P(FakeVmmContractTest, RefusedBootIsReportedWithTheVmmsWords) {
  // The boot request (CH vm.boot, FC InstanceStart) fails as the fake is told to.
  std::string path = BootRequestPath(GetParam());
  if (path.empty()) GTEST_SKIP() << GetParam() << " boots from its command line";
  std::ofstream(dir_.Sub("faults.toml")) << "[[faults.refuse]]\nmethod = \"PUT\"\npath = \"" << path
                                         << "\"\nmessage = \"boot refused by the test\"\n";
  setenv("KUASAR_FAKE_VMM_FAULTS", dir_.Sub("faults.toml").c_str(), 1);
  hv_ = factory_->New();
  ASSERT_OK(hv_->Prepare(Vm()));
  absl::Status st = hv_->Launch();
  unsetenv("KUASAR_FAKE_VMM_FAULTS");
  EXPECT_THAT(st.message(), HasSubstr("boot refused by the test"));
  ASSERT_TRUE(hv_->Identity().has_value());
  EXPECT_FALSE(IsSameProcessAlive(*hv_->Identity()));
}

TEST_P(FakeVmmContractTest, HotplugWhereTheVmmHasIt) {
  ASSERT_NO_FATAL_FAILURE(Boot());
  std::ofstream(dir_.Sub("disk.img")) << std::string(4096, '\0');
  absl::Status added = hv_->AddDisk({"data1", dir_.Sub("disk.img"), "raw", false});
  if (!SupportsHotplug(GetParam())) {
    EXPECT_THAT(added, StatusIs(absl::StatusCode::kUnimplemented));
    return;
  }
  ASSERT_OK(added);
  ASSERT_OK(hv_->RemoveDisk("data1"));
  EXPECT_THAT(hv_->RemoveDisk("data1"), ::testing::Not(::kuasar::testing::IsOk()));
}

INSTANTIATE_TEST_SUITE_P(Drivers, FakeVmmContractTest, ::testing::ValuesIn(DriversUnderTest()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) c = (c == '-') ? '_' : c;
                           return n;
                         });

}  // namespace
}  // namespace kuasar::vmm
