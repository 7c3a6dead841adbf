// libFuzzer target: containerd's sandbox Controller requests, as protobuf bytes from the
// wire, through the same translation and controller the gRPC service uses (with the fake
// backend, so only our handling is exercised). Invariants checked: nothing is created
// outside the state dir, and a sandbox that Shutdown accepted is gone.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "containerd/services/sandbox/v1/sandbox.pb.h"
#include "runtime/core/config.h"
#include "runtime/core/sandbox_controller.h"
#include "runtime/core/testing/fake_backend.h"
#include "runtime/server/proto_convert.h"

namespace {

namespace sb = containerd::services::sandbox::v1;

kuasar::SandboxController* Controller() {
  static kuasar::SandboxController* controller = [] {
    char tmpl[] = "/tmp/kuasar-fuzz-sbapi.XXXXXX";
    std::string root = mkdtemp(tmpl);
    auto config = kuasar::ParseConfig("[sandboxer]\nkind = \"runc\"\nstate_dir = \"" + root +
                                      "/state\"\nlisten = \"" + root + "/s.sock\"\n");
    if (!config.ok()) abort();
    auto c = kuasar::SandboxController::Create(*config, std::make_unique<kuasar::FakeBackend>());
    if (!c.ok()) abort();
    return c->release();
  }();
  return controller;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint8_t ops = data[0];
  sb::ControllerCreateRequest req;
  if (!req.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
  kuasar::SandboxController* c = Controller();
  const std::string& id = req.sandbox_id();
  bool created = c->CreateSandbox(kuasar::ToCreateRequest(req)).ok();
  if (created && id.find('/') != std::string::npos) abort();  // ids are validated
  if (ops & 1) (void)c->StartSandbox(id);
  if (ops & 2) (void)c->Status(id, /*verbose=*/true);
  if (ops & 4) (void)c->Platform(id);
  if (ops & 8) (void)c->UpdateSandbox(id, {{"k", "v"}}, {});
  if (ops & 16) (void)c->Metrics(id);
  if (ops & 32) (void)c->StopSandbox(id, absl::Milliseconds(10));
  if (c->ShutdownSandbox(id).ok() && c->Status(id, false).ok()) abort();
  return 0;
}
