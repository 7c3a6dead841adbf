#include "harness/report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_format.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/child_process.h"
#include "runtime/base/status_macros.h"

namespace kuasar::harness {
namespace {

std::vector<double> Startup(const RunResult& r) {
  std::vector<double> v;
  for (const auto& p : r.pods) {
    if (p.error.empty()) v.push_back(p.startup_ms);
  }
  return v;
}

std::vector<double> FirstOutput(const RunResult& r) {
  std::vector<double> v;
  for (const auto& p : r.pods) {
    if (p.error.empty()) v.push_back(p.first_output_total_ms);
  }
  return v;
}

SetSample FromJson(const nlohmann::json& j) {
  return {j.value("pss_kib", uint64_t{0}), j.value("processes", 0)};
}

}  // namespace

absl::Status WriteJsonLines(const RunResult& run, const std::string& path) {
  std::string out;
  Summary s = Summarize(Startup(run));
  nlohmann::json head = {{"kind", "run"},
                         {"scenario", run.scenario.name},
                         {"mode", StartModeName(run.scenario.mode)},
                         {"pods", run.scenario.pods},
                         {"group_size", run.scenario.group_size},
                         {"containers_per_pod", run.scenario.containers_per_pod},
                         {"target", run.target},
                         {"wall_ms", run.wall_ms},
                         {"failures", run.failures},
                         {"startup_p50_ms", s.p50},
                         {"startup_p90_ms", s.p90},
                         {"startup_p99_ms", s.p99},
                         {"startup_mean_ms", s.mean},
                         {"management_kib_per_pod", ManagementKiBPerPod(run)}};
  out += head.dump() + "\n";
  for (const auto& p : run.pods) {
    nlohmann::json j = p.ToJson();
    j["kind"] = "pod";
    out += j.dump() + "\n";
  }
  for (const auto& p : run.pss) {
    nlohmann::json j = p.ToJson();
    j["kind"] = "pss";
    out += j.dump() + "\n";
  }
  return WriteFileAtomically(path, out, 0644);
}

absl::StatusOr<RunResult> ReadJsonLines(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, 64 << 20));
  RunResult r;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) return absl::DataLossError(absl::StrFormat("%s: bad JSON line", path));
    std::string kind = j.value("kind", "");
    if (kind == "run") {
      r.scenario.name = j.value("scenario", "");
      std::string mode = j.value("mode", "serial");
      r.scenario.mode = mode == "parallel" ? StartMode::kParallel
                        : mode == "groups" ? StartMode::kGroups
                                           : StartMode::kSerial;
      r.scenario.pods = j.value("pods", 0);
      r.scenario.group_size = j.value("group_size", 0);
      r.target = j.value("target", "");
      r.wall_ms = j.value("wall_ms", 0.0);
      r.failures = j.value("failures", 0);
    } else if (kind == "pod") {
      PodResult p;
      p.index = j.value("index", 0);
      p.pod_id = j.value("pod_id", "");
      p.run_pod_ms = j.value("run_pod_sandbox_ms", 0.0);
      p.create_ms = j.value("create_container_ms", 0.0);
      p.start_ms = j.value("start_container_ms", 0.0);
      p.first_output_ms = j.value("first_output_ms", 0.0);
      p.startup_ms = j.value("startup_ms", 0.0);
      p.first_output_total_ms = j.value("first_output_total_ms", 0.0);
      p.began_ms = j.value("began_ms", 0.0);
      p.error = j.value("error", "");
      r.pods.push_back(p);
    } else if (kind == "pss") {
      r.pss.push_back({j.value("pods", 0), FromJson(j["management"]), FromJson(j["per_pod"]),
                       FromJson(j["node"])});
    }
  }
  return r;
}

double ManagementKiBPerPod(const RunResult& run) {
  // Least squares over (pods, management PSS); robust to one noisy sample.
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const auto& p : run.pss) {
    double x = p.pods, y = static_cast<double>(p.management.pss_kib);
    n += 1;
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  double den = n * sxx - sx * sx;
  return (n < 2 || den == 0) ? 0 : (n * sxy - sx * sy) / den;
}

namespace {

// The one-shim-per-pod baseline each kuasar sandboxer is measured against.
std::string BaselineOf(const std::string& target) {
  if (target == "kuasar-vmm") return "vmm-shim";
  if (target == "kuasar-runc") return "runc-shim";
  return "";
}

std::string Verdict(bool met) { return met ? "met" : "NOT met"; }

// Ratios of each kuasar target against its baseline in the same run, with the targets of
// docs/SPECIFICATION.md (serial P50 >= 3x, parallel wall >= 2.5x, sandboxer PSS growth
// < 64 KiB per pod).
std::string Comparison(const std::string& scenario, const std::vector<const RunResult*>& list) {
  std::string md;
  for (const RunResult* r : list) {
    std::string base_name = BaselineOf(r->target);
    const RunResult* base = nullptr;
    for (const RunResult* b : list) {
      if (b->target == base_name) base = b;
    }
    if (base == nullptr) continue;
    if (md.empty()) {
      md += "| " + scenario + ": target vs baseline | startup P50 x faster | wall x faster | "
            "mgmt KiB/pod (ours / baseline) | verdicts |\n|---|---|---|---|---|\n";
    }
    double p50 = Summarize(Startup(*r)).p50, bp50 = Summarize(Startup(*base)).p50;
    double sp = p50 > 0 ? bp50 / p50 : 0, wall = r->wall_ms > 0 ? base->wall_ms / r->wall_ms : 0;
    double ours = ManagementKiBPerPod(*r), theirs = ManagementKiBPerPod(*base);
    std::string verdicts;
    if (r->scenario.mode == StartMode::kSerial) {
      verdicts += "serial P50 >= 3x: " + Verdict(sp >= 3.0);
    } else {
      verdicts += "parallel wall >= 2.5x: " + Verdict(wall >= 2.5);
    }
    verdicts += "; PSS < 64 KiB/pod: " + Verdict(ours < 64.0);
    md += absl::StrFormat("| %s vs %s | %.2f | %.2f | %.1f / %.1f | %s |\n", r->target, base->target,
                          sp, wall, ours, theirs, verdicts);
  }
  return md.empty() ? md : md + "\n";
}

}  // namespace

std::string MarkdownSummary(const std::vector<RunResult>& runs) {
  std::map<std::string, std::vector<const RunResult*>> by_scenario;
  for (const auto& r : runs) by_scenario[r.scenario.name].push_back(&r);
  std::string md;
  for (const auto& [name, list] : by_scenario) {
    md += absl::StrFormat("### %s (%s, %d pods)\n\n", name, StartModeName(list[0]->scenario.mode),
                          list[0]->scenario.pods);
    md += "| target | startup P50 ms | P90 | P99 | mean | first output P50 ms | wall s | "
          "failures | mgmt PSS MiB (last) | mgmt KiB/pod | per-pod procs PSS MiB |\n";
    md += "|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (const RunResult* r : list) {
      Summary s = Summarize(Startup(*r));
      Summary f = Summarize(FirstOutput(*r));
      const PssPoint* last = r->pss.empty() ? nullptr : &r->pss.back();
      md += absl::StrFormat(
          "| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %d | %.2f | %.1f | %.2f |\n", r->target,
          s.p50, s.p90, s.p99, s.mean, f.p50, r->wall_ms / 1000, r->failures,
          last ? last->management.pss_kib / 1024.0 : 0, ManagementKiBPerPod(*r),
          last ? last->per_pod.pss_kib / 1024.0 : 0);
    }
    md += "\n" + Comparison(name, list);
  }
  return md;
}

std::string CdfSvg(const std::vector<const RunResult*>& runs, const std::string& title) {
  const int w = 720, h = 440, ml = 70, mr = 20, mt = 40, mb = 50;
  double xmax = 1;
  for (const RunResult* r : runs) {
    for (double v : Startup(*r)) xmax = std::max(xmax, v);
  }
  double step = std::pow(10, std::floor(std::log10(xmax)));
  xmax = std::ceil(xmax / step) * step;
  auto X = [&](double v) { return ml + (w - ml - mr) * v / xmax; };
  auto Y = [&](double q) { return h - mb - (h - mt - mb) * q; };
  static const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" "
      "fill=\"white\"/>\n<text x=\"%d\" y=\"22\" font-size=\"15\">%s</text>\n",
      w, h, ml, title);
  for (int i = 0; i <= 5; ++i) {
    double x = xmax * i / 5, q = i / 5.0;
    svg += absl::StrFormat(
        "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>"
        "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0f</text>\n",
        X(x), mt, X(x), h - mb, X(x), h - mb + 16, x);
    svg += absl::StrFormat(
        "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
        "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n",
        ml, Y(q), w - mr, Y(q), ml - 6, Y(q) + 4, q);
  }
  svg += absl::StrFormat(
      "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">startup time (ms): RunPodSandbox to "
      "container started</text>\n<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" "
      "text-anchor=\"middle\">fraction of pods</text>\n",
      (w + ml - mr) / 2, h - 12, (h - mb + mt) / 2, (h - mb + mt) / 2);
  for (size_t k = 0; k < runs.size(); ++k) {
    std::vector<double> v = Startup(*runs[k]);
    std::sort(v.begin(), v.end());
    std::string pts = absl::StrFormat("%.1f,%.1f", X(v.empty() ? 0 : v[0]), Y(0));
    for (size_t i = 0; i < v.size(); ++i) {
      double q = static_cast<double>(i + 1) / static_cast<double>(v.size());
      pts += absl::StrFormat(" %.1f,%.1f %.1f,%.1f", X(v[i]), Y(q - 1.0 / v.size()), X(v[i]), Y(q));
    }
    const char* color = kColors[k % 6];
    svg += absl::StrFormat(
        "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"%s\"/>\n"
        "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"4\" fill=\"%s\"/>"
        "<text x=\"%d\" y=\"%d\">%s</text>\n",
        color, pts, w - mr - 190, mt + 10 + 18 * static_cast<int>(k), color, w - mr - 170,
        mt + 15 + 18 * static_cast<int>(k), runs[k]->target);
  }
  return svg + "</svg>\n";
}

absl::Status WritePlots(const std::vector<RunResult>& runs, const std::string& out_dir) {
  std::map<std::string, std::vector<const RunResult*>> by_scenario;
  for (const auto& r : runs) by_scenario[r.scenario.name].push_back(&r);
  for (const auto& [name, list] : by_scenario) {
    std::string svg_path = absl::StrFormat("%s/cdf-%s.svg", out_dir, name);
    RETURN_IF_ERROR(WriteFileAtomically(
        svg_path,
        CdfSvg(list, absl::StrFormat("%s: %d pods, %s", name, list[0]->scenario.pods,
                                     StartModeName(list[0]->scenario.mode))),
        0644));
    std::string png = absl::StrFormat("%s/cdf-%s.png", out_dir, name);
    auto child = ChildProcess::Spawn({"rsvg-convert", "-o", png, svg_path});
    if (child.ok()) (void)child->Wait();
  }
  return absl::OkStatus();
}

}  // namespace kuasar::harness
