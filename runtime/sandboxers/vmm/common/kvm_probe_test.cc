// Label "qemu": boots the guest image under KVM (briefly). Skips, naming the reason,
// without QEMU or the image.
#include <unistd.h>

#include <gtest/gtest.h>

#include "runtime/sandboxers/vmm/common/kvm_probe.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"

namespace kuasar::vmm {
namespace {

constexpr char kQemu[] = "/usr/bin/qemu-system-x86_64";

TEST(KvmProbeTest, BootIdIsStable) {
  auto a = HostBootId();
  ASSERT_OK(a);
  EXPECT_EQ(a->size(), 36u);
  EXPECT_EQ(*HostBootId(), *a);
}

TEST(KvmProbeTest, DeviceCheckGivesAnAnswer) {
  absl::Status st = CheckKvmDevice();
  spdlog::info("/dev/kvm check: {}", st.ok() ? "ok" : st.ToString());
  EXPECT_THAT(CheckKvmDevice("/nonexistent/kvm"),
              kuasar::testing::StatusIs(absl::StatusCode::kNotFound));
}

TEST(KvmProbeTest, ProbesOnceAndCachesPerBoot) {
  if (::access(kQemu, X_OK) != 0)
    GTEST_SKIP() << kQemu << " missing: apt-get install qemu-system-x86";
  std::string guest = KUASAR_GUEST_DIR;
  if (::access((guest + "/initramfs.img").c_str(), R_OK) != 0) {
    auto why = ReadSmallFile(guest + "/MISSING");
    GTEST_SKIP() << "no guest image in " << guest << ": "
                 << (why.ok() ? *why : "build the kuasar-guest-image-placeholder target");
  }
  TempDir dir("kvmprobe");
  KvmProbeOptions options;
  options.qemu_path = kQemu;
  options.kernel_path = guest + "/vmlinuz";
  options.initrd_path = guest + "/initramfs.img";
  options.timeout = absl::Seconds(4);
  options.cache_path = dir.Sub("cache/kvm-probe.json");
  auto first = ProbeKvm(options);
  ASSERT_OK(first);
  spdlog::info("KVM usable={} took={} reason: {}", first->usable, absl::FormatDuration(first->took),
               first->reason);
  std::cout << "KVM usable=" << first->usable << " (" << first->reason << ")\n";
  EXPECT_FALSE(first->from_cache);
  EXPECT_FALSE(first->reason.empty());
  EXPECT_LT(first->took, options.timeout + absl::Seconds(5));

  auto second = ProbeKvm(options);
  ASSERT_OK(second);
  EXPECT_TRUE(second->from_cache);
  EXPECT_EQ(second->usable, first->usable);
  EXPECT_EQ(second->reason, first->reason);

  // Another image is another question.
  options.machine = "pc";
  options.device = "/nonexistent/kvm";
  auto other = ProbeKvm(options);
  ASSERT_OK(other);
  EXPECT_FALSE(other->from_cache);
  EXPECT_FALSE(other->usable);
}

}  // namespace
}  // namespace kuasar::vmm
