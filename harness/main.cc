// kuasar-harness: runs benchmark scenarios through CRI and reports them.
//   kuasar-harness run --scenario S.toml --endpoint unix:///c.sock --handler H --label L
//                      --work-dir D --management NAME[,NAME] [--management-scope S]
//                      --per-pod NAME[,NAME] [--per-pod-scope S] --out RESULT.jsonl
//   kuasar-harness report --out DIR RESULT.jsonl...   (summary.md, cdf-*.svg/png)
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "absl/strings/str_split.h"
#include "harness/report.h"
#include "runtime/base/atomic_file.h"

int main(int argc, char** argv) {
  using namespace kuasar::harness;
  CLI::App app{"kuasar-harness: pod startup and memory benchmarks through CRI"};
  app.require_subcommand(1);
  std::string scenario, out, management, per_pod;
  CriTarget t;
  auto* run = app.add_subcommand("run", "run one scenario against one target");
  run->add_option("--scenario", scenario)->required();
  run->add_option("--endpoint", t.endpoint)->required();
  run->add_option("--handler", t.handler)->required();
  run->add_option("--label", t.label)->required();
  run->add_option("--work-dir", t.work_dir)->required();
  run->add_option("--management", management, "process names of the management set");
  run->add_option("--management-scope", t.management.scope);
  run->add_option("--per-pod", per_pod, "process names of the per-pod set");
  run->add_option("--per-pod-scope", t.per_pod.scope);
  run->add_option("--out", out)->required();
  std::vector<std::string> inputs;
  auto* report = app.add_subcommand("report", "summarize result files");
  report->add_option("--out", out)->required();
  report->add_option("results", inputs)->required();
  CLI11_PARSE(app, argc, argv);

  if (*run) {
    auto sc = Scenario::Load(scenario);
    if (!sc.ok()) return std::fprintf(stderr, "%s\n", sc.status().ToString().c_str()), 2;
    t.management.names = absl::StrSplit(management, ',', absl::SkipEmpty());
    t.per_pod.names = absl::StrSplit(per_pod, ',', absl::SkipEmpty());
    bool tty = ::isatty(2) && std::getenv("CI") == nullptr;
    auto result = RunCriScenario(*sc, t, [tty](int done, int total) {
      if (tty) std::fprintf(stderr, "\r[%-40s] %d/%d", std::string(40 * done / total, '#').c_str(),
                            done, total);
    });
    if (tty) std::fprintf(stderr, "\n");
    if (!result.ok()) return std::fprintf(stderr, "%s\n", result.status().ToString().c_str()), 1;
    if (auto st = WriteJsonLines(*result, out); !st.ok()) {
      return std::fprintf(stderr, "%s\n", st.ToString().c_str()), 1;
    }
    std::printf("%s", MarkdownSummary({*result}).c_str());
    return result->failures == 0 ? 0 : 3;
  }
  std::vector<RunResult> runs;
  for (const auto& path : inputs) {
    auto r = ReadJsonLines(path);
    if (!r.ok()) return std::fprintf(stderr, "%s\n", r.status().ToString().c_str()), 2;
    runs.push_back(std::move(*r));
  }
  std::string md = MarkdownSummary(runs);
  if (auto st = kuasar::WriteFileAtomically(out + "/summary.md", md, 0644); !st.ok()) {
    return std::fprintf(stderr, "%s\n", st.ToString().c_str()), 1;
  }
  (void)WritePlots(runs, out);
  std::printf("%s", md.c_str());
  return 0;
}
