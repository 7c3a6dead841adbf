#include <gtest/gtest.h>

#include "runtime/base/status_matchers.h"
#include "runtime/sandboxers/wasm/wasm_backend.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

absl::StatusOr<Config> Load(const std::string& toml) { return ParseConfig(toml, "wasm.toml"); }

TEST(WasmConfig, Defaults) {
  auto c = Load("[sandboxer]\nkind = \"wasm\"\nstate_dir = \"/run/k\"\n");
  ASSERT_OK(c);
  auto w = ParseWasmConfig(*c);
  ASSERT_OK(w);
  EXPECT_EQ(w->engine.engine.kind, "wasmtime");
  EXPECT_EQ(w->engine.engine.library, DefaultWasmtimeLibrary());
  EXPECT_EQ(w->engine.root, "/run/k/wasm");
  EXPECT_TRUE(w->engine.runner.ends_with("/kuasar-wasm-run"));
  EXPECT_EQ(w->engine.default_memory_limit, 0);
  EXPECT_EQ(w->engine.default_cpu_quota_us, 0);
  EXPECT_EQ(w->pod.pod_cgroup_parent, "/kuasar");
}

TEST(WasmConfig, KeysAndErrors) {
  auto c = Load(
      "[wasm]\nengine = \"wasmtime\"\nlibrary = \"/x/libwasmtime.so\"\n"
      "default_memory_limit = 33554432\ndefault_cpu_millis = 500\ncpu_period_us = 50000\n"
      "cgroup_memory_overhead = 0\nready_timeout_ms = 5000\npod_cgroup_parent = \"/w\"\n");
  ASSERT_OK(c);
  auto w = ParseWasmConfig(*c);
  ASSERT_OK(w);
  EXPECT_EQ(w->engine.engine.library, "/x/libwasmtime.so");
  EXPECT_EQ(w->engine.default_memory_limit, 32 << 20);
  EXPECT_EQ(w->engine.default_cpu_quota_us, 25000);
  EXPECT_EQ(w->engine.cgroup_memory_overhead, 0);
  EXPECT_EQ(w->engine.ready_timeout, absl::Seconds(5));
  EXPECT_EQ(w->pod.pod_cgroup_parent, "/w");

  EXPECT_THAT(ParseWasmConfig(*Load("[wasm]\nengine = \"v8\"\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("wasm.engine")));
  EXPECT_THAT(ParseWasmConfig(*Load("[wasm]\nmemory = 1\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("memory")));
  EXPECT_THAT(ParseWasmConfig(*Load("[wasm]\ndefault_cpu_millis = -1\n")),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(WasmConfig, WasmEdgeIsAClearErrorAtInit) {
  auto c = Load(
      "[sandboxer]\nstate_dir = \"/tmp/kuasar-wasm-config-test\"\n"
      "[wasm]\nengine = \"wasmedge\"\n");
  ASSERT_OK(c);
  WasmBackend backend;
  BackendContext ctx;
  ctx.config = &*c;
  ctx.sandboxes_dir = "/tmp/kuasar-wasm-config-test/sandboxes";
  EXPECT_THAT(backend.Init(ctx), StatusIs(absl::StatusCode::kFailedPrecondition,
                                          HasSubstr("WasmEdge is not available")));
}

}  // namespace
}  // namespace kuasar
