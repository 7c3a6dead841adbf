#include "runtime/ttrpc/frame.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"

namespace kuasar::ttrpc {
namespace {

void PutBigEndian32(std::uint32_t v, char* out) {
  out[0] = static_cast<char>(v >> 24);
  out[1] = static_cast<char>(v >> 16);
  out[2] = static_cast<char>(v >> 8);
  out[3] = static_cast<char>(v);
}

std::uint32_t GetBigEndian32(const char* in) {
  const auto* b = reinterpret_cast<const unsigned char*>(in);
  return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
         (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]};
}

// Payload memory is reserved up front only this far; the rest grows as bytes arrive, so
// a peer that declares 4 MiB and sends nothing holds no 4 MiB buffer.
constexpr std::size_t kInitialReserve = 64 * 1024;

}  // namespace

void EncodeFrameHeader(const FrameHeader& header, char out[kFrameHeaderSize]) {
  PutBigEndian32(header.length, out);
  PutBigEndian32(header.stream_id, out + 4);
  out[8] = static_cast<char>(header.type);
  out[9] = static_cast<char>(header.flags);
}

FrameHeader DecodeFrameHeader(const char in[kFrameHeaderSize]) {
  FrameHeader h;
  h.length = GetBigEndian32(in);
  h.stream_id = GetBigEndian32(in + 4);
  h.type = static_cast<std::uint8_t>(in[8]);
  h.flags = static_cast<std::uint8_t>(in[9]);
  return h;
}

std::string EncodeFrame(std::uint32_t stream_id, MessageType type, std::uint8_t flags,
                        std::string_view payload) {
  std::string out(kFrameHeaderSize + payload.size(), '\0');
  EncodeFrameHeader({static_cast<std::uint32_t>(payload.size()), stream_id,
                     static_cast<std::uint8_t>(type), flags},
                    out.data());
  if (!payload.empty()) std::memcpy(out.data() + kFrameHeaderSize, payload.data(), payload.size());
  return out;
}

void SetFrameStreamId(std::string& frame, std::uint32_t stream_id) {
  if (frame.size() >= kFrameHeaderSize) PutBigEndian32(stream_id, frame.data() + 4);
}

void FrameDecoder::Feed(std::string_view bytes) {
  while (!bytes.empty()) {
    switch (state_) {
      case State::kFailed:
        return;
      case State::kHeader: {
        std::size_t n = std::min(bytes.size(), kFrameHeaderSize - header_fill_);
        std::memcpy(header_buf_ + header_fill_, bytes.data(), n);
        header_fill_ += n;
        bytes.remove_prefix(n);
        if (header_fill_ == kFrameHeaderSize) StartFrame();
        break;
      }
      case State::kPayload: {
        std::size_t want = current_.header.length - current_.payload.size();
        std::size_t n = std::min(bytes.size(), want);
        current_.payload.append(bytes.data(), n);
        bytes.remove_prefix(n);
        if (current_.payload.size() == current_.header.length) Complete();
        break;
      }
      case State::kDiscard: {
        std::size_t n = static_cast<std::size_t>(
            std::min<std::uint64_t>(bytes.size(), discard_left_));
        discard_left_ -= n;
        bytes.remove_prefix(n);
        if (discard_left_ == 0) Complete();
        break;
      }
    }
  }
}

void FrameDecoder::StartFrame() {
  header_fill_ = 0;
  current_ = DecodedFrame{};
  current_.header = DecodeFrameHeader(header_buf_);
  if (header_buf_[0] != 0) {
    // PROTOCOL.md: the first byte "should always be zero ... reserved for future use".
    state_ = State::kFailed;
    error_ = absl::StrFormat(
        "frame header declares %u bytes (reserved first byte is nonzero): not ttrpc",
        current_.header.length);
    return;
  }
  if (current_.header.length > max_payload_) {
    current_.oversized = true;
    discard_left_ = current_.header.length;
    state_ = State::kDiscard;
    return;
  }
  if (current_.header.length == 0) {
    Complete();
    return;
  }
  current_.payload.reserve(std::min<std::size_t>(current_.header.length, kInitialReserve));
  state_ = State::kPayload;
}

void FrameDecoder::Complete() {
  buffered_bytes_ += current_.payload.size();
  ready_.push_back(std::move(current_));
  current_ = DecodedFrame{};
  state_ = State::kHeader;
}

DecodedFrame FrameDecoder::Next() {
  DecodedFrame f = std::move(ready_.front());
  ready_.pop_front();
  buffered_bytes_ -= f.payload.size();
  return f;
}

}  // namespace kuasar::ttrpc
