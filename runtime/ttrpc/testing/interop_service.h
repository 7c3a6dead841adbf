// The interop test service (kuasar.test.v1.Interop) on our C++ Server: the twin of
// fixtures/ttrpc-interop/service.go, used by the unit tests, the Go interop client and
// the benchmarks. Payloads are protobuf well-known types (StringValue, Int64Value, ...).
#pragma once

#include "absl/status/status.h"
#include "runtime/ttrpc/server.h"

namespace kuasar::ttrpc::testing {

inline constexpr char kInteropService[] = "kuasar.test.v1.Interop";

// Echo(StringValue) -> same; Fail(StringValue "CODE:message") -> that status;
// Metadata(Empty) -> StringValue "k=v;k=v" sorted; Sleep(Int64Value ms) -> Empty after ms
// unless cancelled; Deadline(Empty) -> Int64Value ms left, -1 without a deadline;
// ServerStream(Int32Value n) -> n x "msg-i"; ClientStream(stream StringValue) ->
// StringValue joined by ","; Bidi(stream StringValue) -> stream "echo:" + each.
absl::Status RegisterInteropService(Server& server);

}  // namespace kuasar::ttrpc::testing
