#include "runtime/core/state_store.h"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "runtime/base/atomic_file.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/core/sandbox_record.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::ElementsAre;

TEST(StateStoreTest, SaveLoadRemove) {
  TempDir dir;
  auto store = StateStore::Open(dir.Sub("records"));
  ASSERT_OK(store);
  ASSERT_OK(store->Save("sb1", {{"a", 1}}));
  auto doc = store->Load("sb1");
  ASSERT_OK(doc);
  EXPECT_EQ((*doc)["a"], 1);
  ASSERT_OK(store->Remove("sb1"));
  EXPECT_THAT(store->Load("sb1"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(store->Remove("sb1"));  // idempotent
}

TEST(StateStoreTest, RejectsBadIds) {
  TempDir dir;
  auto store = StateStore::Open(dir.Sub("records"));
  ASSERT_OK(store);
  EXPECT_THAT(store->Save("../escape", {}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store->Load(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("escape.json")));
}

TEST(StateStoreTest, LoadAllQuarantinesCorruptAndSweepsTemp) {
  TempDir dir;
  auto store = StateStore::Open(dir.Sub("records"));
  ASSERT_OK(store);
  ASSERT_OK(store->Save("good", {{"x", 1}}));
  ASSERT_OK(WriteFileAtomically(dir.Sub("records/torn.json"), "{\"x\": 1, \"y\""));
  ASSERT_OK(WriteFileAtomically(dir.Sub("records/array.json"), "[1,2]"));
  ASSERT_OK(WriteFileAtomically(dir.Sub("records/.good.json.1.2.tmp"), "{"));
  ASSERT_EQ(::symlink("/etc/passwd", dir.Sub("records/link.json").c_str()), 0);
  auto loaded = store->LoadAll();
  ASSERT_OK(loaded);
  ASSERT_EQ(loaded->entries.size(), 1u);
  EXPECT_EQ(loaded->entries[0].id, "good");
  EXPECT_THAT(loaded->quarantined, ElementsAre("array", "link", "torn"));
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("records/.good.json.1.2.tmp")));
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("records/torn.json")));
  int quarantined = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.Sub("records/quarantine"))) {
    (void)e;
    ++quarantined;
  }
  EXPECT_EQ(quarantined, 3);
  // A second load is clean.
  auto again = store->LoadAll();
  ASSERT_OK(again);
  EXPECT_TRUE(again->quarantined.empty());
}

TEST(StateStoreTest, RefusesSymlinkedDirectory) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.Sub("real").c_str(), 0700), 0);
  ASSERT_EQ(::symlink(dir.Sub("real").c_str(), dir.Sub("records").c_str()), 0);
  EXPECT_THAT(StateStore::Open(dir.Sub("records")),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(SandboxRecordTest, RoundTrips) {
  SandboxRecord r;
  r.id = "sb";
  r.state = SandboxState::kReady;
  r.rootfs.push_back({"overlay", "overlay", "", {"lowerdir=/a", "upperdir=/b"}});
  r.annotations["k"] = "v";
  r.options_type_url = "type.googleapis.com/runtime.v1.PodSandboxConfig";
  r.options_bytes = std::string("\x00\x01\xff", 3);
  r.pid = 77;
  r.created_at = absl::FromUnixNanos(1234567890123456789);
  r.backend["holder_pid"] = 77;
  auto back = SandboxRecord::FromJson(r.ToJson());
  ASSERT_OK(back);
  EXPECT_EQ(back->ToJson(), r.ToJson());
  EXPECT_EQ(back->options_bytes, r.options_bytes);
  EXPECT_EQ(back->created_at, r.created_at);
}

TEST(SandboxRecordTest, RejectsMalformed) {
  EXPECT_THAT(SandboxRecord::FromJson({{"schema", 1}}), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(SandboxRecord::FromJson({{"schema", 1}, {"id", "x"}, {"state", "weird"}}),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(SandboxRecord::FromJson({{"schema", 9}, {"id", "x"}, {"state", "ready"}}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace kuasar
