#include "runtime/ttrpc/frame.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kuasar::ttrpc {
namespace {

std::vector<DecodedFrame> Drain(FrameDecoder& d) {
  std::vector<DecodedFrame> out;
  while (d.HasFrame()) out.push_back(d.Next());
  return out;
}

TEST(FrameTest, HeaderIsBigEndianTenBytes) {
  std::string f = EncodeFrame(0x01020304, MessageType::kData, kFlagRemoteClosed | kFlagNoData, "");
  ASSERT_EQ(f.size(), kFrameHeaderSize);
  EXPECT_EQ(f, std::string("\x00\x00\x00\x00\x01\x02\x03\x04\x03\x05", 10));
  f = EncodeFrame(7, MessageType::kRequest, 0, "abc");
  EXPECT_EQ(f, std::string("\x00\x00\x00\x03\x00\x00\x00\x07\x01\x00"
                           "abc",
                           13));
  FrameHeader h = DecodeFrameHeader(f.data());
  EXPECT_EQ(h.length, 3u);
  EXPECT_EQ(h.stream_id, 7u);
  EXPECT_EQ(h.type, 1);
  EXPECT_EQ(h.flags, 0);
}

TEST(FrameTest, SetFrameStreamIdPatchesHeader) {
  std::string f = EncodeFrame(0, MessageType::kRequest, 0, "x");
  SetFrameStreamId(f, 0xdeadbeef);
  EXPECT_EQ(DecodeFrameHeader(f.data()).stream_id, 0xdeadbeefu);
}

TEST(FrameTest, ByteByByte) {
  std::string wire = EncodeFrame(1, MessageType::kRequest, 0, "hello") +
                     EncodeFrame(3, MessageType::kData, kFlagRemoteClosed, "") +
                     EncodeFrame(5, MessageType::kResponse, 0, std::string(1000, 'z'));
  FrameDecoder d;
  std::vector<DecodedFrame> frames;
  for (std::size_t i = 0; i < wire.size(); ++i) {
    d.Feed(std::string_view(&wire[i], 1));
    for (auto& f : Drain(d)) frames.push_back(std::move(f));
  }
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].header.stream_id, 1u);
  EXPECT_EQ(frames[0].payload, "hello");
  EXPECT_EQ(frames[1].header.flags, kFlagRemoteClosed);
  EXPECT_EQ(frames[1].payload, "");
  EXPECT_EQ(frames[2].payload, std::string(1000, 'z'));
  EXPECT_FALSE(d.mid_frame());
  EXPECT_FALSE(d.failed());
}

TEST(FrameTest, ManyFramesInOneFeed) {
  std::string wire;
  for (std::uint32_t i = 0; i < 100; ++i) {
    wire += EncodeFrame(2 * i + 1, MessageType::kRequest, 0, std::string(i, 'a'));
  }
  FrameDecoder d;
  d.Feed(wire);
  auto frames = Drain(d);
  ASSERT_EQ(frames.size(), 100u);
  for (std::uint32_t i = 0; i < 100; ++i) {
    EXPECT_EQ(frames[i].header.stream_id, 2 * i + 1);
    EXPECT_EQ(frames[i].payload.size(), i);
  }
  EXPECT_EQ(d.buffered_bytes(), 0u);
}

TEST(FrameTest, MidFrameTracksPartialHeaderAndPayload) {
  std::string wire = EncodeFrame(1, MessageType::kRequest, 0, "abcdef");
  FrameDecoder d;
  EXPECT_FALSE(d.mid_frame());
  d.Feed(wire.substr(0, 4));
  EXPECT_TRUE(d.mid_frame());
  d.Feed(wire.substr(4, 8));
  EXPECT_TRUE(d.mid_frame());
  EXPECT_FALSE(d.HasFrame());
  d.Feed(wire.substr(12));
  EXPECT_FALSE(d.mid_frame());
  ASSERT_TRUE(d.HasFrame());
  EXPECT_EQ(d.Next().payload, "abcdef");
}

TEST(FrameTest, MaxSizeIsAccepted) {
  std::string payload(kMaxMessageSize, 'm');
  std::string wire = EncodeFrame(9, MessageType::kData, 0, payload);
  FrameDecoder d;
  // Split at odd places.
  d.Feed(std::string_view(wire).substr(0, 3));
  d.Feed(std::string_view(wire).substr(3, 65536));
  d.Feed(std::string_view(wire).substr(3 + 65536));
  ASSERT_TRUE(d.HasFrame());
  DecodedFrame f = d.Next();
  EXPECT_FALSE(f.oversized);
  EXPECT_EQ(f.payload.size(), kMaxMessageSize);
}

TEST(FrameTest, OversizedIsSkippedAndReported) {
  // One byte over the limit: the payload is skipped without buffering, and the next
  // frame decodes normally (Go ttrpc discards it and answers RESOURCE_EXHAUSTED).
  const std::uint32_t len = kMaxMessageSize + 1;
  char header[kFrameHeaderSize];
  EncodeFrameHeader({len, 5, 1, 0}, header);
  FrameDecoder d;
  d.Feed(std::string_view(header, sizeof(header)));
  std::string chunk(1 << 20, 'x');
  std::size_t left = len;
  while (left > 0) {
    std::size_t n = std::min(left, chunk.size());
    d.Feed(std::string_view(chunk.data(), n));
    left -= n;
    EXPECT_LE(d.buffered_bytes(), 0u);
  }
  d.Feed(EncodeFrame(7, MessageType::kRequest, 0, "next"));
  auto frames = Drain(d);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_TRUE(frames[0].oversized);
  EXPECT_EQ(frames[0].header.stream_id, 5u);
  EXPECT_EQ(frames[0].header.length, len);
  EXPECT_TRUE(frames[0].payload.empty());
  EXPECT_EQ(frames[1].payload, "next");
}

TEST(FrameTest, NonzeroReservedByteIsAProtocolError) {
  FrameDecoder d;
  d.Feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(d.failed());
  EXPECT_FALSE(d.HasFrame());
  EXPECT_NE(d.error().find("reserved"), std::string::npos);
  d.Feed(EncodeFrame(1, MessageType::kRequest, 0, "ignored after failure"));
  EXPECT_FALSE(d.HasFrame());
}

TEST(FrameTest, FramesBeforeAnErrorAreKept) {
  FrameDecoder d;
  d.Feed(EncodeFrame(1, MessageType::kRequest, 0, "ok") + std::string("\xff\xff\xff\xff", 4) +
         std::string(6, '\0'));
  ASSERT_TRUE(d.HasFrame());
  EXPECT_EQ(d.Next().payload, "ok");
  EXPECT_TRUE(d.failed());
}

}  // namespace
}  // namespace kuasar::ttrpc
