#include "harness/cri_runner.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <grpcpp/create_channel.h>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "cri/v1/api.grpc.pb.h"
#include "runtime/base/logging.h"

namespace kuasar::harness {
namespace {

namespace cri = ::runtime::v1;

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

absl::Status Call(const grpc::Status& st, std::string_view what) {
  if (st.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(st.error_code()),
                      absl::StrFormat("%s: %s", what, st.error_message()));
}

class Bench {
 public:
  Bench(const Scenario& s, const CriTarget& t)
      : s_(s),
        t_(t),
        stub_(cri::RuntimeService::NewStub(
            grpc::CreateChannel(t.endpoint, grpc::InsecureChannelCredentials()))) {}

  cri::PodSandboxConfig PodConfig(int i) const {
    cri::PodSandboxConfig c;
    std::string name = absl::StrFormat("bench-%s-%d", t_.label, i);
    c.mutable_metadata()->set_name(name);
    c.mutable_metadata()->set_uid(name + "-uid");
    c.mutable_metadata()->set_namespace_("kuasar-bench");
    c.set_log_directory(absl::StrFormat("%s/logs/%s", t_.work_dir, name));
    c.mutable_linux();
    return c;
  }

  absl::Status Deadline(grpc::ClientContext* ctx) const {
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(s_.timeout_s)));
    return absl::OkStatus();
  }

  PodResult RunPod(int i, absl::Time run_start) {
    PodResult r;
    r.index = i;
    absl::Time t0 = absl::Now();
    r.began_ms = Ms(t0 - run_start);
    cri::PodSandboxConfig pod = PodConfig(i);
    std::filesystem::create_directories(pod.log_directory());
    cri::RunPodSandboxRequest rreq;
    *rreq.mutable_config() = pod;
    rreq.set_runtime_handler(t_.handler);
    cri::RunPodSandboxResponse rresp;
    {
      grpc::ClientContext ctx;
      (void)Deadline(&ctx);
      if (auto st = Call(stub_->RunPodSandbox(&ctx, rreq, &rresp), "RunPodSandbox"); !st.ok()) {
        r.error = std::string(st.message());
        return r;
      }
    }
    r.pod_id = rresp.pod_sandbox_id();
    absl::Time t1 = absl::Now();
    r.run_pod_ms = Ms(t1 - t0);
    std::string first_log;
    for (int c = 0; c < s_.containers_per_pod; ++c) {
      cri::CreateContainerRequest creq;
      creq.set_pod_sandbox_id(r.pod_id);
      *creq.mutable_sandbox_config() = pod;
      auto* cc = creq.mutable_config();
      cc->mutable_metadata()->set_name(absl::StrFormat("c%d", c));
      cc->mutable_image()->set_image(s_.image);
      for (const auto& a : s_.command) cc->add_command(a);
      cc->set_log_path(absl::StrFormat("c%d.log", c));
      cc->mutable_linux();
      if (c == 0) first_log = pod.log_directory() + "/" + cc->log_path();
      cri::CreateContainerResponse cresp;
      absl::Time c0 = absl::Now();
      {
        grpc::ClientContext ctx;
        (void)Deadline(&ctx);
        if (auto st = Call(stub_->CreateContainer(&ctx, creq, &cresp), "CreateContainer");
            !st.ok()) {
          r.error = std::string(st.message());
          return r;
        }
      }
      absl::Time c1 = absl::Now();
      cri::StartContainerRequest sreq;
      sreq.set_container_id(cresp.container_id());
      cri::StartContainerResponse sresp;
      {
        grpc::ClientContext ctx;
        (void)Deadline(&ctx);
        if (auto st = Call(stub_->StartContainer(&ctx, sreq, &sresp), "StartContainer");
            !st.ok()) {
          r.error = std::string(st.message());
          return r;
        }
      }
      absl::Time c2 = absl::Now();
      r.create_ms += Ms(c1 - c0);
      r.start_ms += Ms(c2 - c1);
    }
    absl::Time started = absl::Now();
    r.startup_ms = Ms(started - t0);
    // First output: the ready line in the first container's CRI log.
    absl::Time deadline = started + absl::Seconds(s_.timeout_s);
    while (true) {
      std::ifstream in(first_log);
      std::string all((std::istreambuf_iterator<char>(in)), {});
      if (all.find(s_.ready_line) != std::string::npos) break;
      if (absl::Now() > deadline) {
        r.error = "no first output before the timeout";
        return r;
      }
      absl::SleepFor(absl::Milliseconds(2));
    }
    absl::Time seen = absl::Now();
    r.first_output_ms = Ms(seen - started);
    r.first_output_total_ms = Ms(seen - t0);
    return r;
  }

  void Remove(const std::string& pod_id) {
    cri::StopPodSandboxRequest stop;
    stop.set_pod_sandbox_id(pod_id);
    cri::StopPodSandboxResponse sr;
    grpc::ClientContext c1;
    (void)Deadline(&c1);
    (void)stub_->StopPodSandbox(&c1, stop, &sr);
    cri::RemovePodSandboxRequest rm;
    rm.set_pod_sandbox_id(pod_id);
    cri::RemovePodSandboxResponse rr;
    grpc::ClientContext c2;
    (void)Deadline(&c2);
    if (auto st = Call(stub_->RemovePodSandbox(&c2, rm, &rr), "RemovePodSandbox"); !st.ok()) {
      spdlog::warn("bench op=remove pod={} error=\"{}\"", pod_id, st.message());
    }
  }

  PssPoint Sample(int pods) const {
    return PssPoint{pods, SamplePss(t_.management), SamplePss(t_.per_pod), SampleNodePss()};
  }

 private:
  const Scenario& s_;
  const CriTarget& t_;
  std::unique_ptr<cri::RuntimeService::Stub> stub_;
};

}  // namespace

nlohmann::json PodResult::ToJson() const {
  nlohmann::json j = {{"index", index},
                      {"pod_id", pod_id},
                      {"run_pod_sandbox_ms", run_pod_ms},
                      {"create_container_ms", create_ms},
                      {"start_container_ms", start_ms},
                      {"first_output_ms", first_output_ms},
                      {"startup_ms", startup_ms},
                      {"first_output_total_ms", first_output_total_ms},
                      {"began_ms", began_ms}};
  if (!error.empty()) j["error"] = error;
  return j;
}

nlohmann::json PssPoint::ToJson() const {
  auto set = [](const SetSample& s) {
    return nlohmann::json{{"pss_kib", s.pss_kib}, {"processes", s.processes}};
  };
  return {{"pods", pods},
          {"management", set(management)},
          {"per_pod", set(per_pod)},
          {"node", set(node)}};
}

absl::StatusOr<RunResult> RunCriScenario(const Scenario& s, const CriTarget& t,
                                         const Progress& progress) {
  Bench bench(s, t);
  RunResult result;
  result.scenario = s;
  result.target = t.label;
  // Warm-up pods: image unpacked, connections and caches made, then removed.
  for (int w = 0; w < s.warmup_pods; ++w) {
    PodResult r = bench.RunPod(100000 + w, absl::Now());
    if (!r.error.empty()) {
      return absl::UnavailableError(absl::StrFormat("%s: warm-up pod failed: %s", t.label, r.error));
    }
    bench.Remove(r.pod_id);
  }
  result.pss.push_back(bench.Sample(0));
  std::vector<PodResult> pods(static_cast<size_t>(s.pods));
  std::atomic<int> done{0};
  absl::Time start = absl::Now();
  auto run_one = [&](int i) {
    pods[static_cast<size_t>(i)] = bench.RunPod(i, start);
    int n = ++done;
    if (progress) progress(n, s.pods);
  };
  auto sample_due = [&](int n) {
    return std::find(s.pss_at.begin(), s.pss_at.end(), n) != s.pss_at.end();
  };
  if (s.mode == StartMode::kSerial) {
    for (int i = 0; i < s.pods; ++i) {
      run_one(i);
      if (sample_due(i + 1)) result.pss.push_back(bench.Sample(i + 1));
    }
  } else {
    int group = s.mode == StartMode::kParallel ? s.pods : s.group_size;
    for (int base = 0; base < s.pods; base += group) {
      std::vector<std::thread> threads;
      int end = std::min(s.pods, base + group);
      for (int i = base; i < end; ++i) threads.emplace_back(run_one, i);
      for (auto& th : threads) th.join();
      if (sample_due(end)) result.pss.push_back(bench.Sample(end));
    }
  }
  absl::Time last = start;
  for (const PodResult& p : pods) {
    if (!p.error.empty()) ++result.failures;
    last = std::max(last, start + absl::Milliseconds(p.began_ms + p.startup_ms));
  }
  result.wall_ms = Ms(last - start);
  if (result.pss.back().pods != s.pods) result.pss.push_back(bench.Sample(s.pods));
  if (s.remove_after) {
    std::vector<std::thread> removers;
    std::atomic<size_t> next{0};
    for (int w = 0; w < 8; ++w) {
      removers.emplace_back([&] {
        for (size_t i = next++; i < pods.size(); i = next++) {
          if (!pods[i].pod_id.empty()) bench.Remove(pods[i].pod_id);
        }
      });
    }
    for (auto& th : removers) th.join();
  }
  result.pods = std::move(pods);
  return result;
}

}  // namespace kuasar::harness
