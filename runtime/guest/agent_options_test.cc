#include "runtime/guest/agent_options.h"

#include <gtest/gtest.h>

#include "runtime/base/status_matchers.h"

namespace kuasar::guest {
namespace {

using ::kuasar::testing::StatusIs;

TEST(AgentOptionsTest, ListenAddresses) {
  auto u = ParseListenAddress("unix:/run/agent.sock");
  ASSERT_OK(u);
  EXPECT_EQ(u->kind, ListenAddress::Kind::kUnix);
  EXPECT_EQ(u->path, "/run/agent.sock");
  auto v = ParseListenAddress("vsock:1024");
  ASSERT_OK(v);
  EXPECT_EQ(v->kind, ListenAddress::Kind::kVsock);
  EXPECT_EQ(v->port, 1024u);
  for (const char* bad :
       {"unix:rel.sock", "unix:", "vsock:", "vsock:x", "vsock:0", "tcp:1", "/run/agent.sock"}) {
    EXPECT_THAT(ParseListenAddress(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
  EXPECT_THAT(ParseListenAddress("unix:/" + std::string(120, 'a')),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(AgentOptionsTest, ModesAndValidation) {
  EXPECT_EQ(*ParseInitMode("vm"), InitMode::kVm);
  EXPECT_EQ(*ParseInitMode("namespace"), InitMode::kNamespace);
  EXPECT_EQ(*ParseInitMode("none"), InitMode::kNone);
  EXPECT_THAT(ParseInitMode("systemd"), StatusIs(absl::StatusCode::kInvalidArgument));
  AgentOptions o;
  EXPECT_THAT(ValidateOptions(o), StatusIs(absl::StatusCode::kInvalidArgument));
  o.serve_fds = {3};
  EXPECT_OK(ValidateOptions(o));
  o.serve_fds = {1};
  EXPECT_THAT(ValidateOptions(o), StatusIs(absl::StatusCode::kInvalidArgument));
  o.serve_fds = {3};
  o.state_dir = "relative";
  EXPECT_THAT(ValidateOptions(o), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kuasar::guest
