// libFuzzer target for the agent's request handlers: the first byte picks a method of
// kuasar.agent.v1.Sandbox, the rest is its payload, decoded and dispatched exactly as the
// ttrpc server does (DispatchSandboxUnary, ServeReadStream, ServeWriteStream) against a
// FakeGuestSystem with every capability on, so validation, network planning and the
// stream registry are all reached while nothing on the host changes. WriteStream's
// payload is a run of messages, each prefixed by a 2-byte length.
#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "runtime/base/logging.h"
#include "runtime/base/temp_dir.h"
#include "runtime/guest/sandbox_ttrpc.h"
#include "runtime/guest/testing/fake_guest_system.h"

namespace {

using namespace kuasar::guest;  // NOLINT: a fuzzer's one translation unit

struct Env {
  Env() : dir("kuasar-agent-fuzz") {
    spdlog::set_level(spdlog::level::off);
    system.links = {{"eth0", "52:54:00:12:34:56"}, {"lo", "00:00:00:00:00:00"}};
    SandboxServiceOptions o;
    o.caps = {.set_hostname = true, .configure_network = true, .set_clock = true};
    o.etc_dir = dir.Sub("etc");
    service = std::make_unique<SandboxService>(&system, o);
    StreamRegistryOptions so;
    so.dir = dir.Sub("streams");
    so.buffer_limit = 64 << 10;
    so.unknown_token_wait = absl::ZeroDuration();
    streams = *StreamRegistry::Create(io, so);
  }
  kuasar::TempDir dir;
  testing::FakeGuestSystem system;
  std::unique_ptr<SandboxService> service;
  boost::asio::io_context io;  // never run: the output pump stays idle
  std::unique_ptr<StreamRegistry> streams;
};

constexpr const char* kUnary[] = {"Check", "SetupSandbox", "SyncClock", "ExecVMProcess",
                                  "Shutdown"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Env* env = new Env();
  if (size == 0) return 0;
  const uint8_t which = data[0] % 7;
  std::string payload(reinterpret_cast<const char*>(data + 1), size - 1);
  {
    std::lock_guard<std::mutex> l(env->system.mu);
    env->system.commands.clear();
    env->system.files.clear();
    env->system.sysctls.clear();
  }
  if (which < 5) {
    (void)DispatchSandboxUnary(*env->service, kUnary[which], payload);
    return 0;
  }
  // Streams: fresh tokens each run, so one input's state never leaks into the next.
  (void)env->streams->AddOutput("out");
  (void)env->streams->AddInput("in", [] {});
  auto cancelled = [] { return true; };  // never block: a stream with nothing to do ends
  if (which == 5) {
    (void)ServeReadStream(
        *env->streams, payload, [](const std::string&) { return absl::OkStatus(); }, cancelled);
  } else {
    size_t pos = 0;
    (void)ServeWriteStream(
        *env->streams,
        [&](std::string* msg) -> absl::StatusOr<bool> {
          if (pos + 2 > payload.size()) return false;
          size_t n =
              (static_cast<uint8_t>(payload[pos]) << 8) | static_cast<uint8_t>(payload[pos + 1]);
          pos += 2;
          n = std::min(n, payload.size() - pos);
          *msg = payload.substr(pos, n);
          pos += n;
          return true;
        },
        cancelled);
  }
  env->streams->RemoveAll();
  return 0;
}
