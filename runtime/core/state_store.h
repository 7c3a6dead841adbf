// StateStore keeps one JSON document per sandbox in <dir>/<id>.json, written atomically
// (temp file, fsync, rename, fsync dir), so a crash at any instant leaves the old or the
// new record. On load, a file that does not parse is moved to <dir>/quarantine/ with an
// error logged, never crashing the daemon. Thread-safe for different ids; callers
// serialize writes to the same id (the sandbox's own lock does).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kuasar {

class StateStore {
 public:
  struct Entry {
    std::string id;
    nlohmann::json doc;
  };
  struct LoadResult {
    std::vector<Entry> entries;
    // Ids whose files were corrupt and moved to quarantine/.
    std::vector<std::string> quarantined;
  };

  // Creates `dir` (0700) if needed; refuses a symlinked dir.
  static absl::StatusOr<StateStore> Open(std::string dir);

  absl::Status Save(std::string_view id, const nlohmann::json& doc) const;
  absl::StatusOr<nlohmann::json> Load(std::string_view id) const;
  // Removing a missing record is OK (idempotent teardown).
  absl::Status Remove(std::string_view id) const;
  // Loads every record, quarantining corrupt ones and sweeping stale temp files.
  absl::StatusOr<LoadResult> LoadAll() const;

  // Moves a record that loaded but made no sense into quarantine/.
  absl::Status Quarantine(std::string_view id) const;

  const std::string& dir() const { return dir_; }

 private:
  explicit StateStore(std::string dir) : dir_(std::move(dir)) {}
  absl::StatusOr<std::string> PathFor(std::string_view id) const;
  absl::Status QuarantineFile(const std::string& path, const std::string& name) const;

  std::string dir_;
};

}  // namespace kuasar
