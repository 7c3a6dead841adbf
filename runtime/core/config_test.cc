#include "runtime/core/config.h"

#include <gtest/gtest.h>

#include "runtime/base/status_matchers.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ConfigTest, DefaultsWhenEmpty) {
  auto c = ParseConfig("");
  ASSERT_OK(c);
  EXPECT_EQ(c->sandboxer.kind, "runc");
  EXPECT_EQ(c->sandboxer.socket_mode, 0660u);
  EXPECT_EQ(c->containerd.task_api_version, 3);
}

TEST(ConfigTest, ReadsEveryKey) {
  auto c = ParseConfig(R"(
[sandboxer]
kind = "vmm"
name = "kuasar-vmm"
listen = "/run/k/vmm.sock"
state_dir = "/run/k/vmm"
socket_mode = "0600"
socket_group = "kuasar"
log_level = "debug"
worker_threads = 4
[containerd]
ttrpc_address = "/run/containerd/containerd.sock.ttrpc"
task_api_version = 2
[hypervisor]
path = "/usr/bin/qemu-system-x86_64"
)",
                       "k.toml");
  ASSERT_OK(c);
  EXPECT_EQ(c->sandboxer.kind, "vmm");
  EXPECT_EQ(c->sandboxer.listen, "/run/k/vmm.sock");
  EXPECT_EQ(c->sandboxer.socket_mode, 0600u);
  EXPECT_EQ(c->sandboxer.socket_group, "kuasar");
  EXPECT_EQ(c->sandboxer.worker_threads, 4);
  EXPECT_EQ(c->containerd.task_api_version, 2);
  // Backend sections stay available to the backend.
  EXPECT_EQ((*c->root)["hypervisor"]["path"].value_or(std::string()),
            "/usr/bin/qemu-system-x86_64");
}

TEST(ConfigTest, ErrorsNameFileAndKey) {
  EXPECT_THAT(ParseConfig("[sandboxer]\nkind = \"docker\"\n", "k.toml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("sandboxer.kind: \"docker\" is not one of runc, vmm")));
  EXPECT_THAT(ParseConfig("[sandboxer]\nworker_threads = \"8\"\n", "k.toml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("k.toml: sandboxer.worker_threads: expected an integer")));
  EXPECT_THAT(ParseConfig("[sandboxer]\nworker_threads = 0\n", "k.toml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("out of range")));
  EXPECT_THAT(ParseConfig("[sandboxer]\nlisen = \"/x\"\n", "k.toml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("sandboxer.lisen: unknown key")));
  EXPECT_THAT(ParseConfig("[sandboxer]\nsocket_mode = \"0666\"\n", "k.toml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("other users")));
  EXPECT_THAT(ParseConfig("[sandboxer]\nsocket_mode = \"rw\"\n", "k.toml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("octal")));
  EXPECT_THAT(ParseConfig("[sandboxer]\nstate_dir = \"relative\"\n", "k.toml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("absolute")));
  EXPECT_THAT(ParseConfig("sandboxer = 3\n", "k.toml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sandboxer: expected a table")));
}

TEST(ConfigTest, SyntaxErrorHasLineAndColumn) {
  EXPECT_THAT(ParseConfig("[sandboxer\nkind = 1\n", "bad.toml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad.toml:1:")));
}

TEST(ConfigTest, MissingFileIsNotFound) {
  EXPECT_THAT(LoadConfig("/nonexistent/kuasar.toml"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/kuasar.toml")));
}

}  // namespace
}  // namespace kuasar
