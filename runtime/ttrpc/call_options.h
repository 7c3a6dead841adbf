// Small value types shared by the ttrpc client and server: request metadata, per-call
// options (timeout, metadata) and the shape of a streaming method.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace kuasar::ttrpc {

// ttrpc Request.metadata: repeated key/value pairs; a key may repeat. Keys are sent as
// given; Go's ttrpc.MD lowercases keys, so use lowercase keys to interoperate.
using Metadata = std::multimap<std::string, std::string>;

struct CallOptions {
  // Sent as Request.timeout_nano; the client also gives up (DEADLINE_EXCEEDED) then.
  std::optional<std::chrono::nanoseconds> timeout;
  Metadata metadata;
};

// Which sides of a stream carry more than one message (ttrpc.StreamDesc in Go).
struct StreamKind {
  bool client_streaming = false;
  bool server_streaming = false;
};

}  // namespace kuasar::ttrpc
