// Bindings of the scenario harness (harness/): Scenario, CriTarget, RunCriScenario and the
// result types, each with to_dict() giving plain dicts and lists (no pandas). The run
// releases the GIL; a progress callback is called with it re-acquired (from the runner's
// threads in parallel modes).
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "harness/cri_runner.h"
#include "harness/report.h"
#include "harness/scenario.h"
#include "harness/stats.h"
#include "pybind/src/py_helpers.h"
#include "pybind/src/status_error.h"

namespace kuasar::python {
namespace {

using namespace pybind11::literals;  // NOLINT(build/namespaces)
namespace h = ::kuasar::harness;

py::object Dict(const nlohmann::json& j) { return FromJson(j.dump()); }

absl::StatusOr<h::StartMode> ModeFromName(std::string_view name) {
  if (name == "serial") return h::StartMode::kSerial;
  if (name == "parallel") return h::StartMode::kParallel;
  if (name == "groups") return h::StartMode::kGroups;
  return absl::InvalidArgumentError(
      absl::StrFormat("mode \"%s\" is not serial, parallel or groups", name));
}

nlohmann::json ScenarioJson(const h::Scenario& s) {
  return {{"name", s.name},
          {"pods", s.pods},
          {"mode", h::StartModeName(s.mode)},
          {"group_size", s.group_size},
          {"containers_per_pod", s.containers_per_pod},
          {"image", s.image},
          {"command", s.command},
          {"ready_line", s.ready_line},
          {"pss_at", s.pss_at},
          {"warmup_pods", s.warmup_pods},
          {"timeout_s", s.timeout_s},
          {"remove_after", s.remove_after}};
}

nlohmann::json SummaryJson(const h::Summary& s) {
  return {{"n", s.n},     {"min", s.min}, {"p50", s.p50},  {"p90", s.p90},
          {"p99", s.p99}, {"max", s.max}, {"mean", s.mean}};
}

// The run as one document: what WriteJsonLines writes, nested instead of as lines.
nlohmann::json RunJson(const h::RunResult& r) {
  std::vector<double> startup, first_output;
  for (const auto& p : r.pods) {
    if (!p.error.empty()) continue;
    startup.push_back(p.startup_ms);
    first_output.push_back(p.first_output_total_ms);
  }
  nlohmann::json pods = nlohmann::json::array(), pss = nlohmann::json::array();
  for (const auto& p : r.pods) pods.push_back(p.ToJson());
  for (const auto& p : r.pss) pss.push_back(p.ToJson());
  return {{"scenario", ScenarioJson(r.scenario)},
          {"target", r.target},
          {"wall_ms", r.wall_ms},
          {"failures", r.failures},
          {"startup_ms", SummaryJson(h::Summarize(startup))},
          {"first_output_ms", SummaryJson(h::Summarize(first_output))},
          {"management_kib_per_pod", h::ManagementKiBPerPod(r)},
          {"pods", pods},
          {"pss", pss}};
}

void BindScenario(py::module_& m) {
  py::class_<h::Scenario>(m, "Scenario", R"doc(
One harness run: how many pods, started how ("serial", "parallel" or "groups" of
group_size), with which containers. Scenario.parse(toml_text) / Scenario.load(path) read
fixtures/scenarios/*.toml; every field is also settable.)doc")
      .def(py::init<>())
      .def_static(
          "parse",
          [](const std::string& text, const std::string& source) {
            return ValueOrThrow(h::Scenario::Parse(text, source));
          },
          "text"_a, "source"_a = "<string>", "Parses a scenario TOML; errors name the key.")
      .def_static(
          "load", [](const std::string& path) { return ValueOrThrow(h::Scenario::Load(path)); },
          "path"_a)
      .def_readwrite("name", &h::Scenario::name)
      .def_readwrite("pods", &h::Scenario::pods)
      .def_property(
          "mode", [](const h::Scenario& s) { return std::string(h::StartModeName(s.mode)); },
          [](h::Scenario& s, const std::string& mode) {
            s.mode = ValueOrThrow(ModeFromName(mode));
          })
      .def_readwrite("group_size", &h::Scenario::group_size)
      .def_readwrite("containers_per_pod", &h::Scenario::containers_per_pod)
      .def_readwrite("image", &h::Scenario::image)
      .def_readwrite("command", &h::Scenario::command)
      .def_readwrite("ready_line", &h::Scenario::ready_line)
      .def_readwrite("pss_at", &h::Scenario::pss_at)
      .def_readwrite("warmup_pods", &h::Scenario::warmup_pods)
      .def_readwrite("timeout_s", &h::Scenario::timeout_s)
      .def_readwrite("remove_after", &h::Scenario::remove_after)
      .def("to_dict", [](const h::Scenario& s) { return Dict(ScenarioJson(s)); })
      .def("__copy__", [](const h::Scenario& s) { return h::Scenario(s); })
      .def("__repr__", [](const h::Scenario& s) {
        return absl::StrFormat("Scenario(name=%s, pods=%d, mode=%s)", s.name, s.pods,
                               h::StartModeName(s.mode));
      });

  py::class_<h::ProcessMatcher>(m, "ProcessMatcher", R"doc(
A set of processes to weigh (PSS): argv[0]'s basename is one of names and, when scope is
set, some argument contains it.)doc")
      .def(py::init([](std::vector<std::string> names, std::string scope) {
             return h::ProcessMatcher{std::move(names), std::move(scope)};
           }),
           "names"_a = std::vector<std::string>{}, "scope"_a = "")
      .def_readwrite("names", &h::ProcessMatcher::names)
      .def_readwrite("scope", &h::ProcessMatcher::scope);

  py::class_<h::CriTarget>(m, "CriTarget", R"doc(
Where a scenario runs: a CRI endpoint (containerd), the runtime handler, a label, the
work dir for pod logs (read locally to see first output) and the process sets to weigh.)doc")
      .def(py::init([](std::string label, std::string endpoint, std::string handler,
                       std::string work_dir, h::ProcessMatcher management,
                       h::ProcessMatcher per_pod) {
             return h::CriTarget{std::move(label),    std::move(endpoint),   std::move(handler),
                                 std::move(work_dir), std::move(management), std::move(per_pod)};
           }),
           "label"_a, "endpoint"_a, "handler"_a, "work_dir"_a, "management"_a = h::ProcessMatcher{},
           "per_pod"_a = h::ProcessMatcher{})
      .def_readwrite("label", &h::CriTarget::label)
      .def_readwrite("endpoint", &h::CriTarget::endpoint)
      .def_readwrite("handler", &h::CriTarget::handler)
      .def_readwrite("work_dir", &h::CriTarget::work_dir)
      .def_readwrite("management", &h::CriTarget::management)
      .def_readwrite("per_pod", &h::CriTarget::per_pod);
}

void BindResults(py::module_& m) {
  py::class_<h::PodResult>(m, "PodResult", "One pod's timings (ms) and its error, if any.")
      .def_readonly("index", &h::PodResult::index)
      .def_readonly("pod_id", &h::PodResult::pod_id)
      .def_readonly("run_pod_ms", &h::PodResult::run_pod_ms)
      .def_readonly("create_ms", &h::PodResult::create_ms)
      .def_readonly("start_ms", &h::PodResult::start_ms)
      .def_readonly("first_output_ms", &h::PodResult::first_output_ms)
      .def_readonly("startup_ms", &h::PodResult::startup_ms)
      .def_readonly("first_output_total_ms", &h::PodResult::first_output_total_ms)
      .def_readonly("began_ms", &h::PodResult::began_ms)
      .def_readonly("error", &h::PodResult::error)
      .def_property_readonly("ok", [](const h::PodResult& p) { return p.error.empty(); })
      .def("to_dict", [](const h::PodResult& p) { return Dict(p.ToJson()); });

  py::class_<h::SetSample>(m, "SetSample", "PSS (KiB) of a process set and how many processes.")
      .def_readonly("pss_kib", &h::SetSample::pss_kib)
      .def_readonly("processes", &h::SetSample::processes);

  py::class_<h::PssPoint>(m, "PssPoint", "PSS of each process set after this many pods.")
      .def_readonly("pods", &h::PssPoint::pods)
      .def_readonly("management", &h::PssPoint::management)
      .def_readonly("per_pod", &h::PssPoint::per_pod)
      .def_readonly("node", &h::PssPoint::node)
      .def("to_dict", [](const h::PssPoint& p) { return Dict(p.ToJson()); });

  py::class_<h::RunResult>(m, "RunResult", "A scenario's run on one target.")
      .def_readonly("scenario", &h::RunResult::scenario)
      .def_readonly("target", &h::RunResult::target)
      .def_readonly("pods", &h::RunResult::pods)
      .def_readonly("pss", &h::RunResult::pss)
      .def_readonly("wall_ms", &h::RunResult::wall_ms)
      .def_readonly("failures", &h::RunResult::failures)
      .def(
          "startup_summary", [](const h::RunResult& r) { return Dict(RunJson(r)["startup_ms"]); },
          "Percentiles of startup_ms over the pods that succeeded: n, min, p50, p90, p99, max, "
          "mean.")
      .def("to_dict", [](const h::RunResult& r) { return Dict(RunJson(r)); })
      .def("__repr__", [](const h::RunResult& r) {
        return absl::StrFormat("RunResult(target=%s, pods=%d, failures=%d, wall_ms=%.1f)", r.target,
                               r.pods.size(), r.failures, r.wall_ms);
      });
}

void BindRunner(py::module_& m) {
  m.def(
      "run_cri_scenario",
      [](const h::Scenario& scenario, const h::CriTarget& target, const py::object& progress) {
        h::Progress cb;
        if (!progress.is_none()) {
          cb = [progress](int done, int total) {
            py::gil_scoped_acquire gil;
            try {
              progress(done, total);
            } catch (py::error_already_set& e) {
              e.discard_as_unraisable("kuasar run_cri_scenario progress callback");
            }
          };
        }
        absl::StatusOr<h::RunResult> r;
        {
          py::gil_scoped_release nogil;
          r = h::RunCriScenario(scenario, target, cb);
        }
        // The callback holds a Python object: drop it with the GIL held.
        cb = nullptr;
        return ValueOrThrow(std::move(r));
      },
      "scenario"_a, "target"_a, "progress"_a = py::none(), R"doc(
Runs the scenario through CRI against target, as a kubelet would (RunPodSandbox,
CreateContainer, StartContainer, first log line), timing each phase per pod and sampling
PSS. Blocks with the GIL released; progress(done, total) is called as pods finish.)doc");
  m.def(
      "write_json_lines",
      [](const h::RunResult& r, const std::string& path) {
        ThrowIfError(h::WriteJsonLines(r, path));
      },
      "run"_a, "path"_a, "The run as JSON lines (what kuasar-harness report reads).");
  m.def(
      "read_json_lines",
      [](const std::string& path) { return ValueOrThrow(h::ReadJsonLines(path)); }, "path"_a);
  m.def("markdown_summary", &h::MarkdownSummary, "runs"_a,
        "One table per scenario comparing the runs' targets.");
  m.def(
      "summarize",
      [](std::vector<double> values) { return Dict(SummaryJson(h::Summarize(std::move(values)))); },
      "values"_a, "Nearest-rank percentiles: n, min, p50, p90, p99, max, mean.");
}

}  // namespace

void BindHarness(py::module_& m) {
  BindScenario(m);
  BindResults(m);
  BindRunner(m);
}

}  // namespace kuasar::python
