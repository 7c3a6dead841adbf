// The JSON stream splitter's tests live in option_list_test.cc with the other
// text-format tests; this file checks it against QEMU's observed framing.
#include "sim/common/json_stream.h"

#include <gtest/gtest.h>

namespace kuasar::sim {
namespace {

TEST(JsonStreamQemuFramingTest, NewlineTerminatedCommandsAsClientsSendThem) {
  JsonStreamSplitter s;
  auto pieces = s.Feed("{\"execute\":\"qmp_capabilities\"}\r\n{\"execute\":\"query-status\"}\n");
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[1].text, "{\"execute\":\"query-status\"}");
}

TEST(JsonStreamQemuFramingTest, ByteAtATime) {
  JsonStreamSplitter s;
  std::string msg = "{\"execute\":\"stop\",\"id\":{\"n\":[1,{\"x\":\"]\"}]}}";
  std::vector<JsonPiece> got;
  for (char c : msg) {
    for (auto& p : s.Feed(std::string_view(&c, 1))) got.push_back(p);
  }
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].text, msg);
}

}  // namespace
}  // namespace kuasar::sim
