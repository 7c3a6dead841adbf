// ttrpc micro-benchmarks: unary round trips over a unix socket (small and 64 KiB
// payloads; a handler answering inline on the io thread and one on the worker pool;
// several client threads sharing one connection) and frame decoding.
// Numbers: docs/ttrpc.md.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "runtime/base/temp_dir.h"
#include "runtime/ttrpc/client.h"
#include "runtime/ttrpc/frame.h"
#include "runtime/ttrpc/server.h"

namespace kuasar::ttrpc {
namespace {

// One server and one connected client for the whole process.
struct EchoPair {
  EchoPair() {
    (void)server.RegisterUnary("bench.Echo", "Inline",
                               [](CallContextPtr, std::string req, UnaryResponder r) {
                                 r.Finish(std::move(req));
                               });
    (void)server.RegisterBlockingUnary(
        "bench.Echo", "Pool",
        [](const CallContext&, const std::string& req) -> absl::StatusOr<std::string> {
          return req;
        });
    path = dir.Sub("bench.sock");
    if (!server.Listen(path).ok()) std::abort();
    auto c = Client::Connect(path);
    if (!c.ok()) std::abort();
    client = *std::move(c);
  }
  TempDir dir{"ttrpc-bench"};
  std::string path;
  Server server;
  std::unique_ptr<Client> client;
};

EchoPair& Pair() {
  static EchoPair* pair = new EchoPair();
  return *pair;
}

void RoundTrip(benchmark::State& state, const char* method) {
  Client& client = *Pair().client;
  const std::string payload(static_cast<std::size_t>(state.range(0)), 'p');
  for (auto _ : state) {
    absl::StatusOr<std::string> r = client.Call("bench.Echo", method, payload);
    if (!r.ok() || r->size() != payload.size()) {
      state.SkipWithError("call failed");
      break;
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0) * 2);
}

void BM_TtrpcUnaryInline(benchmark::State& state) { RoundTrip(state, "Inline"); }
void BM_TtrpcUnaryWorkerPool(benchmark::State& state) { RoundTrip(state, "Pool"); }
BENCHMARK(BM_TtrpcUnaryInline)->Arg(16)->Arg(64 * 1024)->UseRealTime();
BENCHMARK(BM_TtrpcUnaryWorkerPool)->Arg(16)->Arg(64 * 1024)->UseRealTime();
// Several threads sharing one connection (calls interleave on the wire).
BENCHMARK(BM_TtrpcUnaryInline)->Arg(16)->Threads(4)->UseRealTime();

void BM_TtrpcFrameDecode(benchmark::State& state) {
  const std::string payload(static_cast<std::size_t>(state.range(0)), 'd');
  std::string wire;
  std::uint32_t id = 1;
  while (wire.size() < (1u << 20)) {
    wire += EncodeFrame(id, MessageType::kData, 0, payload);
    id += 2;
  }
  std::int64_t frames = 0;
  for (auto _ : state) {
    FrameDecoder d;
    // Feed in 64 KiB reads, as the connection does.
    for (std::size_t off = 0; off < wire.size(); off += 65536) {
      d.Feed(std::string_view(wire).substr(off, 65536));
      while (d.HasFrame()) {
        benchmark::DoNotOptimize(d.Next());
        ++frames;
      }
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(wire.size()));
  state.SetItemsProcessed(frames);
}
BENCHMARK(BM_TtrpcFrameDecode)->Arg(64)->Arg(64 * 1024);

}  // namespace
}  // namespace kuasar::ttrpc
