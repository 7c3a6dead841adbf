// The KVM probe's decisions without a real guest: a stand-in "qemu" (a small script the
// test writes) prints the marker, aborts as QEMU does on a broken nested KVM, or hangs
// as a guest does after its boot stub. The KVM device check itself must pass, so these
// skip where /dev/kvm cannot create a VM.
#include <unistd.h>

#include <gtest/gtest.h>

#include "absl/strings/str_format.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/sandboxers/vmm/common/kvm_probe.h"

namespace kuasar::vmm {
namespace {

using ::testing::HasSubstr;

// Finds "-serial file:PATH" in its argv, then acts out `behaviour` on that console.
std::string FakeQemu(std::string_view behaviour) {
  return absl::StrFormat(
      "#!/bin/sh\n"
      "console=\n"
      "while [ $# -gt 0 ]; do\n"
      "  if [ \"$1\" = -serial ]; then console=${2#file:}; shift; fi\n"
      "  shift\n"
      "done\n"
      "%s\n",
      behaviour);
}

class KvmProbeLogicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (absl::Status st = CheckKvmDevice(); !st.ok()) {
      GTEST_SKIP() << "the probe boots only where /dev/kvm creates a VM: " << st.message();
    }
    ASSERT_OK(WriteFileAtomically(dir_.Sub("vmlinuz"), "kernel", 0644));
    ASSERT_OK(WriteFileAtomically(dir_.Sub("initrd"), "initrd", 0644));
  }
  KvmProbeOptions Options(const std::string& name, std::string_view behaviour) {
    std::string qemu = dir_.Sub(name);
    EXPECT_OK(WriteFileAtomically(qemu, FakeQemu(behaviour), 0755));
    KvmProbeOptions o;
    o.qemu_path = qemu;
    o.kernel_path = dir_.Sub("vmlinuz");
    o.initrd_path = dir_.Sub("initrd");
    o.timeout = absl::Seconds(1);
    o.cache_path = dir_.Sub("cache/kvm-probe.json");
    return o;
  }
  TempDir dir_{"kvmlogic"};
};

TEST_F(KvmProbeLogicTest, TheMarkerOnTheConsoleMeansUsable) {
  auto r = ProbeKvm(Options("qemu-ok",
                            "echo 'Run /init' >$console; echo KUASAR_KVM_PROBE_OK "
                            ">>$console; exit 0"));
  ASSERT_OK(r);
  EXPECT_TRUE(r->usable) << r->reason;
  EXPECT_THAT(r->reason, HasSubstr("guest userspace reached under KVM"));
  EXPECT_FALSE(r->from_cache);
}

TEST_F(KvmProbeLogicTest, AQemuThatAbortsIsUnusableWithItsLastWords) {
  auto r =
      ProbeKvm(Options("qemu-abort", "echo 'kvm_buf_set_msrs: Assertion failed.' >&2; exit 134"));
  ASSERT_OK(r);
  EXPECT_FALSE(r->usable);
  EXPECT_THAT(r->reason, HasSubstr("exited with 134"));
  EXPECT_THAT(r->reason, HasSubstr("kvm_buf_set_msrs"));
}

TEST_F(KvmProbeLogicTest, AHungGuestIsUnusableAfterTheTimeoutAndKilled) {
  KvmProbeOptions o = Options("qemu-hang",
                              "echo 'Probing EDD (edd=off to disable)... ok' >$console\n"
                              "exec sleep 30");
  absl::Time start = absl::Now();
  auto r = ProbeKvm(o);
  ASSERT_OK(r);
  EXPECT_FALSE(r->usable);
  EXPECT_THAT(r->reason, HasSubstr("did not reach userspace under KVM within 1s"));
  EXPECT_THAT(r->reason, HasSubstr("Probing EDD"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));  // killed, not waited for
}

TEST_F(KvmProbeLogicTest, TheAnswerIsCachedPerKeyAndBoot) {
  KvmProbeOptions o = Options("qemu-abort2", "exit 1");
  auto first = ProbeKvm(o);
  ASSERT_OK(first);
  EXPECT_FALSE(first->from_cache);
  auto again = ProbeKvm(o);
  ASSERT_OK(again);
  EXPECT_TRUE(again->from_cache);
  EXPECT_EQ(again->reason, first->reason);
  // A cache written on another host boot is not believed.
  ASSERT_OK(WriteFileAtomically(o.cache_path,
                                R"({"key": {"boot_id": "another-boot"}, "usable": true})", 0644));
  auto after_reboot = ProbeKvm(o);
  ASSERT_OK(after_reboot);
  EXPECT_FALSE(after_reboot->from_cache);
  EXPECT_FALSE(after_reboot->usable);
  o.cpu_model = "max";  // another question
  auto other = ProbeKvm(o);
  ASSERT_OK(other);
  EXPECT_FALSE(other->from_cache);
}

TEST_F(KvmProbeLogicTest, AMissingImageIsAnErrorNotAnAnswer) {
  KvmProbeOptions o = Options("qemu-unused", "exit 0");
  o.initrd_path = dir_.Sub("no-initrd");
  EXPECT_THAT(ProbeKvm(o), kuasar::testing::StatusIs(absl::StatusCode::kFailedPrecondition,
                                                     HasSubstr("guest image")));
}

}  // namespace
}  // namespace kuasar::vmm
