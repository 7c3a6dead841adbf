#include "runtime/sandboxers/wasm/wasm_container_spec.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include "runtime/base/status_matchers.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

absl::StatusOr<WasmContainerSpec> Parse(const std::string& json) {
  auto oci = OciSpec::Parse(json);
  if (!oci.ok()) return oci.status();
  return ParseWasmContainerSpec(*oci, "/b");
}

TEST(WasmContainerSpec, MapsProcessRootMountsNamespacesAndLimits) {
  auto s = Parse(R"({
    "ociVersion": "1.2.0",
    "process": {"args": ["app.wasm", "x"], "env": ["A=1"], "cwd": "/srv",
                "user": {"uid": 1000, "gid": 1001, "additionalGids": [5]},
                "noNewPrivileges": true,
                "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"]},
                "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 64, "hard": 128},
                            {"type": "RLIMIT_CPU", "soft": 3, "hard": 4},
                            {"type": "RLIMIT_AS", "soft": 1, "hard": 1}]},
    "root": {"path": "rootfs", "readonly": true},
    "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
               {"destination": "/data", "type": "bind", "source": "/host/data",
                "options": ["rbind", "ro"]},
               {"destination": "/etc/hosts", "source": "/p/hosts", "options": ["rbind"]}],
    "linux": {"cgroupsPath": "/kubepods/c1",
              "namespaces": [{"type": "pid"}, {"type": "mount"},
                             {"type": "network", "path": "/proc/7/ns/net"},
                             {"type": "ipc", "path": "/proc/7/ns/ipc"},
                             {"type": "pid", "path": "/proc/7/ns/pid"}],
              "resources": {"memory": {"limit": 16777216},
                            "cpu": {"quota": 50000, "period": 100000}}}})");
  ASSERT_OK(s);
  EXPECT_EQ(s->rootfs, "/b/rootfs");
  EXPECT_TRUE(s->rootfs_readonly);
  EXPECT_EQ(s->ModulePath(), "/srv/app.wasm");
  EXPECT_EQ(s->env, std::vector<std::string>{"A=1"});
  ASSERT_EQ(s->binds.size(), 2u);
  EXPECT_EQ(s->binds[0].host_path, "/host/data");
  EXPECT_EQ(s->binds[0].guest_path, "/data");
  EXPECT_TRUE(s->binds[0].read_only);
  ASSERT_EQ(s->namespaces.size(), 2u);  // pid and mount are not joined
  EXPECT_EQ(s->namespaces[0].type, "network");
  EXPECT_EQ(s->cgroups_path, "/kubepods/c1");
  EXPECT_EQ(s->memory_limit, 16 << 20);
  EXPECT_EQ(s->cpu_quota_us, 50000);
  EXPECT_EQ(s->cpu_period_us, 100000);
  EXPECT_EQ(s->cpu_time_limit_s, 3);
  ASSERT_EQ(s->rlimits.size(), 1u);  // CPU goes to the engine, AS is left alone
  EXPECT_EQ(s->rlimits[0].resource, RLIMIT_NOFILE);
  EXPECT_EQ(s->uid, 1000u);
  EXPECT_EQ(s->gid, 1001u);
  EXPECT_TRUE(s->no_new_privileges);
  ASSERT_TRUE(s->capabilities.has_value());
  EXPECT_EQ(s->capabilities->bounding, std::vector<std::string>{"CAP_KILL"});
  EXPECT_TRUE(s->capabilities->permitted.empty());
}

TEST(WasmContainerSpec, UnlimitedAndDefaults) {
  auto s = Parse(R"({"ociVersion": "1.0.2", "process": {"args": ["/m.wasm"]},
                     "root": {"path": "/abs/root"},
                     "linux": {"resources": {"memory": {"limit": -1}, "cpu": {"quota": -1}}}})");
  ASSERT_OK(s);
  EXPECT_EQ(s->rootfs, "/abs/root");
  EXPECT_EQ(s->ModulePath(), "/m.wasm");
  EXPECT_EQ(s->memory_limit, 0);
  EXPECT_EQ(s->cpu_quota_us, 0);
  EXPECT_EQ(s->cwd, "/");
}

TEST(WasmContainerSpec, ErrorsNameTheField) {
  EXPECT_THAT(Parse(R"({"ociVersion": "1", "process": {"args": ["/m"]}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("root")));
  EXPECT_THAT(Parse(R"({"ociVersion": "1", "process": {"args": ["/m"], "terminal": true},
                        "root": {"path": "r"}})"),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("terminal")));
  EXPECT_THAT(Parse(R"({"ociVersion": "1", "process": {"args": ["/m"]}, "root": {"path": "r"},
                        "linux": {"resources": {"memory": {"limit": "lots"}}}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("memory.limit")));
}

}  // namespace
}  // namespace kuasar
