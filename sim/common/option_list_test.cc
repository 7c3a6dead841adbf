#include "sim/common/option_list.h"

#include <gtest/gtest.h>

#include "runtime/base/status_matchers.h"
#include "sim/common/hybrid_vsock.h"
#include "sim/common/json_stream.h"
#include "sim/common/sim_flags.h"

namespace kuasar::sim {
namespace {

TEST(OptionListTest, QemuSyntaxWithImpliedKeyAndEscapedCommas) {
  OptionList o = ParseQemuOptions("socket,id=c0,path=/run/a,,b.sock,server=on,nowait", true);
  EXPECT_EQ(o.implied, "socket");
  EXPECT_EQ(o.Get("id"), "c0");
  EXPECT_EQ(o.Get("path"), "/run/a,b.sock");
  EXPECT_EQ(o.Get("server"), "on");
  EXPECT_TRUE(o.Has("nowait"));
  EXPECT_FALSE(o.Has("wait"));
  EXPECT_EQ(o.Unknown({"id", "path", "server"}), std::vector<std::string>{"nowait"});
}

TEST(OptionListTest, LastValueWins) { EXPECT_EQ(ParseQemuOptions("a=1,a=2", false).Get("a"), "2"); }

TEST(OptionListTest, CloudHypervisorBracketsAndQuotesKeepCommas) {
  OptionList o = ParseClhOptions("tap=tap0,fd=[3,4],mac=12:34:56:78:90:ab,x=\"a,b\"");
  EXPECT_EQ(o.Get("fd"), "[3,4]");
  EXPECT_EQ(o.Get("mac"), "12:34:56:78:90:ab");
  EXPECT_EQ(o.Get("x"), "\"a,b\"");
  EXPECT_EQ(o.items.size(), 4u);
}

TEST(OptionListTest, Sizes) {
  EXPECT_EQ(*ParseSize("512M", 1), 512ull << 20);
  EXPECT_EQ(*ParseSize("1G", 1), 1ull << 30);
  EXPECT_EQ(*ParseSize("2048", 1 << 20), 2048ull << 20);
  EXPECT_EQ(*ParseSize("4096k", 1), 4096ull << 10);
  EXPECT_EQ(*ParseSize("64MB", 1), 64ull << 20);
  EXPECT_FALSE(ParseSize("", 1).ok());
  EXPECT_FALSE(ParseSize("12Q", 1).ok());
  EXPECT_FALSE(ParseSize("99999999999999999999G", 1).ok());
}

TEST(OptionListTest, Toggles) {
  EXPECT_EQ(ParseToggle("on"), true);
  EXPECT_EQ(ParseToggle(""), true);
  EXPECT_EQ(ParseToggle("off"), false);
  EXPECT_EQ(ParseToggle("maybe"), std::nullopt);
}

std::vector<std::string> Texts(const std::vector<JsonPiece>& pieces) {
  std::vector<std::string> out;
  for (const auto& p : pieces) out.push_back(p.kind == JsonPiece::Kind::kValue ? p.text : "!");
  return out;
}

TEST(JsonStreamTest, SplitsBackToBackObjectsWithoutNewlines) {
  JsonStreamSplitter s;
  EXPECT_EQ(Texts(s.Feed(R"({"a":1}{"b":"}{"}  [1,2])")),
            (std::vector<std::string>{R"({"a":1})", R"({"b":"}{"})", "[1,2]"}));
}

TEST(JsonStreamTest, KeepsPartialInputUntilComplete) {
  JsonStreamSplitter s;
  EXPECT_TRUE(s.Feed(R"({"execute": "qu)").empty());
  EXPECT_EQ(Texts(s.Feed("ery-status\\\"\"}\n")),
            (std::vector<std::string>{R"({"execute": "query-status\""})"}));
}

TEST(JsonStreamTest, ScalarsEndAtWhitespaceStringsDoNot) {
  JsonStreamSplitter s;
  EXPECT_EQ(Texts(s.Feed("42 \"a b\" true{}")),
            (std::vector<std::string>{"42", "\"a b\"", "true", "{}"}));
}

TEST(JsonStreamTest, StrayCloseAndLimits) {
  JsonStreamSplitter s(16, 3);
  EXPECT_EQ(Texts(s.Feed("}")), std::vector<std::string>{"!"});
  EXPECT_EQ(Texts(s.Feed("[[[[1]]]]\n{}")), (std::vector<std::string>{"!", "{}"}));
  EXPECT_EQ(Texts(s.Feed("{\"aaaaaaaaaaaaaaaaaaaa\":1}\n[2]")),
            (std::vector<std::string>{"!", "[2]"}));
}

TEST(HybridVsockTest, ConnectLine) {
  EXPECT_EQ(ParseConnectLine("CONNECT 1024"), 1024u);
  EXPECT_EQ(ParseConnectLine("CONNECT 52\r"), 52u);
  EXPECT_EQ(ParseConnectLine("CONNECT 4294967295"), 4294967295u);
  for (const char* bad : {"CONNECT", "CONNECT ", "CONNECT -1", "CONNECT 4294967296", "connect 5",
                          "CONNECT 5 6", "CONNECT 0x10", ""}) {
    EXPECT_EQ(ParseConnectLine(bad), std::nullopt) << bad;
  }
}

TEST(SimFlagsTest, TakesOnlyItsOwnFlags) {
  std::vector<std::string> args = {"--api-sock", "/a", "--agent", "/bin/agent", "--model=/m.toml",
                                   "--seed", "7", "--model-scale", "0.5", "-name", "x"};
  auto f = ExtractSimFlags(&args);
  ASSERT_OK(f);
  EXPECT_EQ(args, (std::vector<std::string>{"--api-sock", "/a", "-name", "x"}));
  EXPECT_EQ(f->agent, "/bin/agent");
  EXPECT_EQ(f->model, "/m.toml");
  EXPECT_EQ(f->seed, 7u);
  EXPECT_EQ(f->scale, 0.5);
  std::vector<std::string> bad = {"--personality", "bochs"};
  EXPECT_FALSE(ExtractSimFlags(&bad).ok());
  std::vector<std::string> dangling = {"--agent"};
  EXPECT_FALSE(ExtractSimFlags(&dangling).ok());
  std::vector<std::string> scale = {"--model-scale", "-1"};
  EXPECT_FALSE(ExtractSimFlags(&scale).ok());
}

TEST(SimFlagsTest, PersonalityNames) {
  EXPECT_EQ(PersonalityFromArgv0("/usr/bin/qemu-system-x86_64"), Personality::kQemu);
  EXPECT_EQ(PersonalityFromArgv0("fake-vmm/cloud-hypervisor"), Personality::kCloudHypervisor);
  EXPECT_EQ(PersonalityFromArgv0("kuasar-fake-vmm"), std::nullopt);
  EXPECT_EQ(PersonalityFromName("fc"), Personality::kFirecracker);
}

}  // namespace
}  // namespace kuasar::sim
