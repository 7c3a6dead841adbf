#include "runtime/base/logging.h"
#include "runtime/core/state_store.h"

#include <dirent.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <ctime>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/id_check.h"
#include "runtime/base/status_macros.h"

namespace kuasar {
namespace {

constexpr std::string_view kSuffix = ".json";
constexpr size_t kMaxRecordBytes = 4 << 20;

}  // namespace

absl::StatusOr<StateStore> StateStore::Open(std::string dir) {
  RETURN_IF_ERROR(EnsurePrivateDirectory(dir));
  return StateStore(std::move(dir));
}

absl::StatusOr<std::string> StateStore::PathFor(std::string_view id) const {
  RETURN_IF_ERROR(ValidateId(id, "sandbox id"));
  return absl::StrFormat("%s/%s%s", dir_, id, kSuffix);
}

absl::Status StateStore::Save(std::string_view id, const nlohmann::json& doc) const {
  ASSIGN_OR_RETURN(std::string path, PathFor(id));
  return WriteFileAtomically(path, doc.dump(), 0600);
}

absl::StatusOr<nlohmann::json> StateStore::Load(std::string_view id) const {
  ASSIGN_OR_RETURN(std::string path, PathFor(id));
  ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, kMaxRecordBytes));
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::DataLossError(absl::StrCat(path, ": not a JSON object"));
  }
  return doc;
}

absl::Status StateStore::Remove(std::string_view id) const {
  ASSIGN_OR_RETURN(std::string path, PathFor(id));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus(errno, "unlink", path);
  return SyncDirectory(dir_);
}

absl::Status StateStore::QuarantineFile(const std::string& path, const std::string& name) const {
  std::string qdir = absl::StrCat(dir_, "/quarantine");
  RETURN_IF_ERROR(EnsurePrivateDirectory(qdir));
  std::string target = absl::StrCat(qdir, "/", name, ".", std::time(nullptr));
  if (::rename(path.c_str(), target.c_str()) != 0) {
    return ErrnoStatus(errno, "rename", absl::StrCat(path, " -> ", target));
  }
  return SyncDirectory(dir_);
}

absl::Status StateStore::Quarantine(std::string_view id) const {
  ASSIGN_OR_RETURN(std::string path, PathFor(id));
  return QuarantineFile(path, absl::StrFormat("%s%s", id, kSuffix));
}

absl::StatusOr<StateStore::LoadResult> StateStore::LoadAll() const {
  LoadResult result;
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return ErrnoStatus(errno, "opendir", dir_);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
  ::closedir(d);
  std::sort(names.begin(), names.end());

  for (const std::string& name : names) {
    std::string path = absl::StrCat(dir_, "/", name);
    if (name[0] == '.' && name.ends_with(".tmp")) {
      // A writer died before its rename; the record it was replacing is intact.
      spdlog::warn("state_store=sweep file={} reason=stale-temp", path);
      ::unlink(path.c_str());
      continue;
    }
    if (!name.ends_with(kSuffix)) continue;
    std::string id = name.substr(0, name.size() - kSuffix.size());
    absl::StatusOr<nlohmann::json> doc = ValidateId(id, "sandbox id").ok()
                                             ? Load(id)
                                             : absl::InvalidArgumentError("invalid id in name");
    if (!doc.ok()) {
      spdlog::error("state_store=quarantine file={} error=\"{}\"", path, doc.status().message());
      RETURN_IF_ERROR(QuarantineFile(path, name));
      result.quarantined.push_back(id);
      continue;
    }
    result.entries.push_back({std::move(id), std::move(*doc)});
  }
  return result;
}

}  // namespace kuasar
