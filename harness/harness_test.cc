#include <unistd.h>

#include <gtest/gtest.h>

#include "harness/pss.h"
#include "harness/report.h"
#include "harness/scenario.h"
#include "harness/stats.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"

namespace kuasar::harness {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ScenarioTest, ParsesAndRejectsWithTheKey) {
  auto s = Scenario::Parse(R"([scenario]
name = "par"
pods = 20
mode = "groups"
group_size = 5
pss_at = [1, 10, 20]
command = ["sh", "-c", "echo ready"]
)", "s.toml");
  ASSERT_OK(s);
  EXPECT_EQ(s->pods, 20);
  EXPECT_EQ(s->mode, StartMode::kGroups);
  EXPECT_EQ(s->group_size, 5);
  EXPECT_EQ(s->pss_at, (std::vector<int>{1, 10, 20}));
  EXPECT_THAT(Scenario::Parse("[scenario]\nmode = \"burst\"\n", "s.toml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("scenario.mode")));
  EXPECT_THAT(Scenario::Parse("[scenario]\npods = 0\n", "s.toml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("scenario.pods")));
  EXPECT_THAT(Scenario::Parse("[scenario]\npodz = 3\n", "s.toml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown key")));
}

TEST(StatsTest, NearestRankPercentiles) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  Summary s = Summarize(v);
  EXPECT_EQ(s.p50, 50);
  EXPECT_EQ(s.p90, 90);
  EXPECT_EQ(s.p99, 99);
  EXPECT_EQ(s.max, 100);
  EXPECT_DOUBLE_EQ(s.mean, 50.5);
  EXPECT_EQ(Summarize({}).n, 0);
}

TEST(PssTest, ReadsOwnPssAndMatchesByName) {
  auto pss = ReadPssKiB(::getpid());
  ASSERT_OK(pss);
  EXPECT_GT(*pss, 100u);
  EXPECT_THAT(ReadPssKiB(999999999), StatusIs(absl::StatusCode::kNotFound));
  ProcessMatcher me{{"harness_test"}, ""};
  auto pids = FindProcesses(me);
  EXPECT_NE(std::find(pids.begin(), pids.end(), ::getpid()), pids.end());
  EXPECT_GT(SamplePss(me).pss_kib, 0u);
  ProcessMatcher scoped{{"harness_test"}, "no-such-scope-argument"};
  EXPECT_EQ(SamplePss(scoped).processes, 0);
}

RunResult Fake(const std::string& target, double base, double slope_kib) {
  RunResult r;
  r.scenario.name = "serial-4";
  r.scenario.pods = 4;
  r.target = target;
  for (int i = 0; i < 4; ++i) {
    PodResult p;
    p.index = i;
    p.pod_id = "p" + std::to_string(i);
    p.startup_ms = base + i;
    p.first_output_total_ms = base + i + 1;
    r.pods.push_back(p);
  }
  for (int n : {0, 2, 4}) {
    PssPoint pt;
    pt.pods = n;
    pt.management.pss_kib = static_cast<uint64_t>(1000 + slope_kib * n);
    r.pss.push_back(pt);
  }
  r.wall_ms = base * 4;
  return r;
}

TEST(ReportTest, RoundTripsAndSummarizes) {
  TempDir dir;
  RunResult a = Fake("kuasar", 100, 10), b = Fake("baseline", 400, 8000);
  ASSERT_OK(WriteJsonLines(a, dir.Sub("a.jsonl")));
  auto back = ReadJsonLines(dir.Sub("a.jsonl"));
  ASSERT_OK(back);
  EXPECT_EQ(back->pods.size(), 4u);
  EXPECT_EQ(back->pods[3].startup_ms, 103);
  EXPECT_NEAR(ManagementKiBPerPod(*back), 10, 1e-9);
  std::string md = MarkdownSummary({a, b});
  EXPECT_THAT(md, HasSubstr("| kuasar | 101.0 |"));
  EXPECT_THAT(md, HasSubstr("| baseline | 401.0 |"));
  std::string svg = CdfSvg({&a, &b}, "t");
  EXPECT_THAT(svg, HasSubstr("<polyline"));
  EXPECT_THAT(svg, HasSubstr("baseline"));
  ASSERT_OK(WritePlots({a, b}, dir.path()));
}

TEST(ReportTest, ComparesEachSandboxerWithItsBaselineAndSaysWhichTargetsAreMet) {
  // Serial: 4x faster and 10 KiB/pod meets both; the runc pair is 2x and 100 KiB/pod.
  RunResult vmm = Fake("kuasar-vmm", 100, 10), shim = Fake("vmm-shim", 400, 8000);
  RunResult runc = Fake("kuasar-runc", 200, 100), rshim = Fake("runc-shim", 400, 4000);
  std::string md = MarkdownSummary({vmm, shim, runc, rshim});
  EXPECT_THAT(md, HasSubstr("| kuasar-vmm vs vmm-shim | 3.97 |"));
  EXPECT_THAT(md, HasSubstr("serial P50 >= 3x: met; PSS < 64 KiB/pod: met"));
  EXPECT_THAT(md, HasSubstr("| kuasar-runc vs runc-shim | 2.00 |"));
  EXPECT_THAT(md, HasSubstr("serial P50 >= 3x: NOT met; PSS < 64 KiB/pod: NOT met"));
  // A target without its baseline in the run gets no comparison row.
  EXPECT_THAT(MarkdownSummary({vmm}), ::testing::Not(HasSubstr("vs vmm-shim")));
}

}  // namespace
}  // namespace kuasar::harness
