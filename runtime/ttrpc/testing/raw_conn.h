// RawConn: a bare unix-socket peer for tests that must speak malformed or hand-built
// ttrpc (slow-loris, garbage, oversized frames, odd stream ids). Blocking; one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "runtime/base/unique_fd.h"
#include "runtime/ttrpc/call_options.h"
#include "runtime/ttrpc/frame.h"

namespace kuasar::ttrpc::testing {

class RawConn {
 public:
  static absl::StatusOr<RawConn> Connect(const std::string& path);
  explicit RawConn(UniqueFd fd) : fd_(std::move(fd)) {}

  bool Write(std::string_view bytes);
  // The next frame; UNAVAILABLE at EOF, DEADLINE_EXCEEDED after `timeout`.
  absl::StatusOr<DecodedFrame> ReadFrame(std::chrono::milliseconds timeout);
  // True if the peer closed the connection within `timeout` (frames are skipped).
  bool WaitClosed(std::chrono::milliseconds timeout);
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  FrameDecoder decoder_;
};

// An encoded Request frame.
std::string RequestFrame(std::uint32_t stream_id, std::string_view service,
                         std::string_view method, std::string_view payload,
                         std::int64_t timeout_nano = 0, std::uint8_t flags = 0);
// The status carried by a Response frame's payload.
absl::Status ResponseStatus(const DecodedFrame& frame);

}  // namespace kuasar::ttrpc::testing
