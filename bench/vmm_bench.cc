// The drivers' control-plane hot paths: a QMP command round trip (QmpClient against the
// scripted QMP server over a socketpair: framing, JSON, id matching) and a REST round
// trip (RestClient, one HTTP/1.1 request per connection, as Cloud Hypervisor's API takes
// them) to the fake VMM's Cloud Hypervisor personality.
#include <sys/socket.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "runtime/base/child_process.h"
#include "runtime/base/temp_dir.h"
#include "runtime/sandboxers/vmm/common/qmp_client.h"
#include "runtime/sandboxers/vmm/common/testing/scripted_qmp_server.h"
#include "runtime/sandboxers/vmm/rest/rest_client.h"

namespace {

using kuasar::UniqueFd;
using nlohmann::json;

void BM_QmpQueryStatus(benchmark::State& state) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    state.SkipWithError("socketpair");
    return;
  }
  kuasar::vmm::testing::ScriptedQmpServer server{UniqueFd(fds[1])};
  server.OnCommand("query-status", [](const json&) {
    return json{{"return", {{"status", "running"}, {"running", true}}}};
  });
  server.Start();
  auto client = kuasar::vmm::QmpClient::FromFd(UniqueFd(fds[0]));
  if (!client.ok()) {
    state.SkipWithError(std::string(client.status().message()).c_str());
    return;
  }
  for (auto _ : state) {
    auto r = (*client)->Execute("query-status");
    if (!r.ok()) state.SkipWithError("query-status failed");
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_QmpQueryStatus)->Unit(benchmark::kMicrosecond);

void BM_RestPingFakeCloudHypervisor(benchmark::State& state) {
  kuasar::TempDir dir("vmmbench");
  std::string sock = dir.Sub("api.sock");
  kuasar::SpawnOptions so;
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  env.push_back(std::string("KUASAR_FAKE_VMM_MODEL=") + KUASAR_SIM_CI_FAST);
  so.env = env;
  auto vmm = kuasar::ChildProcess::Spawn(
      {KUASAR_FAKE_VMM_BIN, "--personality", "cloud-hypervisor", "--api-socket", "path=" + sock},
      so);
  if (!vmm.ok()) {
    state.SkipWithError("cannot start the fake VMM");
    return;
  }
  kuasar::vmm::RestClient client(sock);
  if (!client.WaitUntilAnswering("/api/v1/vmm.ping", absl::Now() + absl::Seconds(10)).ok()) {
    state.SkipWithError("the fake VMM's API did not answer");
    return;
  }
  for (auto _ : state) {
    auto r = client.Call("GET", "/api/v1/vmm.ping");
    if (!r.ok()) state.SkipWithError("vmm.ping failed");
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_RestPingFakeCloudHypervisor)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
