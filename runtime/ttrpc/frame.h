// ttrpc message framing (containerd/ttrpc PROTOCOL.md, "Message Frame"): a 10-byte
// big-endian header (data length u32, stream id u32, type u8, flags u8) and the data.
// Pure byte handling, no sockets, so it can be fuzzed. Not thread-safe: one decoder per
// connection, used from that connection's strand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

namespace kuasar::ttrpc {

inline constexpr std::size_t kFrameHeaderSize = 10;
// PROTOCOL.md: "The maximum data length is 4MB and any larger size should be rejected."
inline constexpr std::uint32_t kMaxMessageSize = 4u << 20;

enum class MessageType : std::uint8_t { kRequest = 1, kResponse = 2, kData = 3 };

// PROTOCOL.md "Request Flags" / "Data Flags".
inline constexpr std::uint8_t kFlagRemoteClosed = 0x1;
inline constexpr std::uint8_t kFlagRemoteOpen = 0x2;
inline constexpr std::uint8_t kFlagNoData = 0x4;

struct FrameHeader {
  std::uint32_t length = 0;
  std::uint32_t stream_id = 0;
  std::uint8_t type = 0;  // a MessageType, or an unknown value to be ignored
  std::uint8_t flags = 0;
};

void EncodeFrameHeader(const FrameHeader& header, char out[kFrameHeaderSize]);
FrameHeader DecodeFrameHeader(const char in[kFrameHeaderSize]);

// Header + payload in one buffer. The caller keeps payload within kMaxMessageSize.
std::string EncodeFrame(std::uint32_t stream_id, MessageType type, std::uint8_t flags,
                        std::string_view payload);
// Rewrites the stream id of an encoded frame (ids are assigned at send time).
void SetFrameStreamId(std::string& frame, std::uint32_t stream_id);

struct DecodedFrame {
  FrameHeader header;
  std::string payload;
  // The declared length exceeded the limit: the payload was skipped, not kept. Go ttrpc
  // answers such a frame with RESOURCE_EXHAUSTED on its stream and keeps the connection.
  bool oversized = false;
};

// Consumes bytes incrementally, in chunks of any size, and yields whole frames.
// A frame whose declared length is over `max_payload` is skipped byte by byte (never
// buffered) and reported as oversized. A frame whose first (reserved) byte is nonzero
// declares 16 MiB or more: no ttrpc peer sends that, so it is a protocol error and the
// decoder stops (the connection is then closed) rather than discard gigabytes.
class FrameDecoder {
 public:
  explicit FrameDecoder(std::uint32_t max_payload = kMaxMessageSize)
      : max_payload_(max_payload) {}

  // Feeds bytes; complete frames become available through Next(). Ignored after an error.
  void Feed(std::string_view bytes);
  bool HasFrame() const { return !ready_.empty(); }
  // Pops the oldest complete frame; call only when HasFrame().
  DecodedFrame Next();

  // True while a frame has started (some header or payload bytes) but not completed.
  bool mid_frame() const { return state_ != State::kHeader || header_fill_ > 0; }
  bool failed() const { return state_ == State::kFailed; }
  const std::string& error() const { return error_; }
  // Bytes held by frames not yet popped plus the one in progress.
  std::size_t buffered_bytes() const { return buffered_bytes_ + current_.payload.size(); }

 private:
  enum class State { kHeader, kPayload, kDiscard, kFailed };
  void StartFrame();
  void Complete();

  const std::uint32_t max_payload_;
  State state_ = State::kHeader;
  char header_buf_[kFrameHeaderSize] = {};
  std::size_t header_fill_ = 0;
  std::uint64_t discard_left_ = 0;
  DecodedFrame current_;
  std::deque<DecodedFrame> ready_;
  std::size_t buffered_bytes_ = 0;
  std::string error_;
};

}  // namespace kuasar::ttrpc
