// The ttrpc face of the agent's Sandbox service (kuasar.agent.v1.Sandbox): decodes each
// request, calls SandboxService or the StreamRegistry, encodes the reply. The decode +
// dispatch step is exposed on its own so the fuzzer drives exactly what the server runs.
// Streaming calls hold a worker thread each, so at most `max_streams` run at once.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "runtime/guest/sandbox_service.h"
#include "runtime/guest/stream_registry.h"
#include "runtime/ttrpc/server.h"

namespace kuasar::guest {

inline constexpr char kSandboxServiceName[] = "kuasar.agent.v1.Sandbox";

// Check, SetupSandbox, SyncClock, ExecVMProcess, Shutdown: payload in, payload out.
// UNIMPLEMENTED for any other method.
absl::StatusOr<std::string> DispatchSandboxUnary(SandboxService& service, std::string_view method,
                                                 const std::string& payload);

// ReadStream: `request` is a ReadStreamRequest; chunks go to `send` as StreamChunks.
absl::Status ServeReadStream(StreamRegistry& streams, const std::string& request,
                             const std::function<absl::Status(const std::string&)>& send,
                             const StreamRegistry::Cancelled& cancelled);
// WriteStream: `recv` yields serialized StreamChunks (false at the end of the stream).
absl::Status ServeWriteStream(StreamRegistry& streams,
                              const std::function<absl::StatusOr<bool>(std::string*)>& recv,
                              const StreamRegistry::Cancelled& cancelled);

struct SandboxEndpoints {
  SandboxService* service = nullptr;
  StreamRegistry* streams = nullptr;
  int max_streams = 32;
};

// Registers every method of kuasar.agent.v1.Sandbox. `endpoints`' pointers must outlive
// the server.
absl::Status RegisterSandboxService(ttrpc::Server& server, const SandboxEndpoints& endpoints);

}  // namespace kuasar::guest
