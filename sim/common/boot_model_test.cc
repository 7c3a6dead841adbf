#include "sim/common/boot_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "sim/common/sim_config.h"
#include "sim/testing/fake_vmm_process.h"

namespace kuasar::sim {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

SimConfig Load(const std::string& text) {
  TempDir dir("simmodel");
  std::string path = testing::WriteFile(dir.path(), "m.toml", text);
  SimConfig c;
  EXPECT_OK(ReadModelFile(path, &c));
  return c;
}

std::vector<double> Samples(const BootModel& m, const std::string& instance, int n) {
  BootSampler s(m, instance);
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(s.BootMs());
  std::sort(v.begin(), v.end());
  return v;
}

TEST(BootModelTest, LognormalHitsMedianAndP90) {
  SimConfig c = Load(R"(
    [boot]
    seed = 7
    distribution = "lognormal"
    median_ms = 100
    p90_ms = 150
  )");
  auto v = Samples(c.model, "vm", 20000);
  EXPECT_NEAR(v[v.size() / 2], 100, 4);
  EXPECT_NEAR(v[v.size() * 9 / 10], 150, 7);
  EXPECT_NEAR(c.model.boot.MedianMs(), 100, 1e-9);
}

TEST(BootModelTest, PercentilesInterpolate) {
  SimConfig c = Load(R"(
    [boot]
    seed = 1
    distribution = "percentiles"
    percentiles = [0, 50, 100]
    percentile_ms = [10, 20, 60]
  )");
  auto v = Samples(c.model, "vm", 20000);
  EXPECT_GE(v.front(), 10);
  EXPECT_LE(v.back(), 60);
  EXPECT_NEAR(v[v.size() / 2], 20, 1.5);
  EXPECT_DOUBLE_EQ(c.model.boot.MedianMs(), 20);
}

TEST(BootModelTest, SeedIsReproduciblePerInstanceAndScaleApplies) {
  SimConfig c = Load(R"(
    [boot]
    seed = 42
    scale = 0.5
    distribution = "lognormal"
    median_ms = 100
    p90_ms = 200
    min_ms = 10
  )");
  EXPECT_EQ(Samples(c.model, "a", 5), Samples(c.model, "a", 5));
  EXPECT_NE(Samples(c.model, "a", 5), Samples(c.model, "b", 5));
  auto v = Samples(c.model, "a", 20000);
  EXPECT_NEAR(v[v.size() / 2], 50, 3);
  EXPECT_GE(v.front(), 5);  // min_ms clamps before scaling
}

TEST(BootModelTest, MemoryCapsGuestPartAtGuestRam) {
  MemoryModel m{5, 27, 0.5};
  EXPECT_DOUBLE_EQ(m.TouchMib(128, 2), 5 + 27 + 1);
  EXPECT_DOUBLE_EQ(m.TouchMib(16, 1), 5 + 16 + 0.5);
}

TEST(BootModelTest, ShippedModelsParse) {
  for (const char* name :
       {"cloud-hypervisor", "firecracker", "qemu-system-x86_64", "stratovirt", "ci-fast"}) {
    SimConfig c;
    ASSERT_OK(ReadModelFile(std::string(KUASAR_SIM_FIXTURES_DIR) + "/" + name + ".toml", &c))
        << name;
  }
  SimConfig fc;
  ASSERT_OK(ReadModelFile(KUASAR_SIM_FIXTURES_DIR "/firecracker.toml", &fc));
  EXPECT_EQ(fc.model.memory.overhead_mib, 5);  // SPECIFICATION.md
  EXPECT_LE(fc.model.boot.MedianMs(), 125);
}

TEST(BootModelTest, ErrorsNameFileAndKey) {
  TempDir dir("simmodel");
  SimConfig c;
  std::string bad =
      testing::WriteFile(dir.path(), "bad.toml", "[boot]\ndistribution = \"gamma\"\n");
  EXPECT_THAT(ReadModelFile(bad, &c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("boot.distribution")));
  std::string typo = testing::WriteFile(dir.path(), "typo.toml", "[memory]\noverhead = 3\n");
  EXPECT_THAT(ReadModelFile(typo, &c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("memory.overhead: unknown")));
  std::string faults = testing::WriteFile(dir.path(), "f.toml", "[faults]\nhang = 1\n");
  EXPECT_THAT(ReadModelFile(faults, &c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("faults.hang")));
  std::string p90 = testing::WriteFile(
      dir.path(), "p.toml", "[boot]\ndistribution = \"lognormal\"\nmedian_ms = 9\np90_ms = 3\n");
  EXPECT_THAT(ReadModelFile(p90, &c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("boot.p90_ms")));
}

}  // namespace
}  // namespace kuasar::sim
