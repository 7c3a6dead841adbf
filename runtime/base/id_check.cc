#include "runtime/base/id_check.h"

#include <sys/stat.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"

namespace kuasar {
namespace {

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace

absl::Status ValidateId(std::string_view id, std::string_view what) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrFormat("%s is empty", what));
  if (id.size() > kMaxIdLength) {
    return absl::InvalidArgumentError(absl::StrFormat("%s is %d bytes, over the limit of %d", what,
                                                      id.size(), kMaxIdLength));
  }
  if (!IsAlnum(id[0])) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s \"%s\" must start with a letter or digit", what, id));
  }
  for (char c : id) {
    if (!IsAlnum(c) && c != '_' && c != '.' && c != '-') {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s \"%s\" has a character outside [A-Za-z0-9_.-]", what,
          absl::CEscape(absl::string_view(id.data(), id.size()))));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> PathUnder(std::string_view root, std::string_view id,
                                      std::string_view what) {
  RETURN_IF_ERROR(ValidateId(id, what));
  return absl::StrFormat("%s/%s", root, id);
}

absl::Status CheckRealDirectory(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "lstat", path);
  if (S_ISLNK(st.st_mode)) {
    return absl::PermissionDeniedError(absl::StrCat(path, " is a symlink; refusing to use it"));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a directory"));
  }
  return absl::OkStatus();
}

absl::Status EnsurePrivateDirectory(const std::string& path, unsigned mode) {
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, "mkdir", path);
  }
  return CheckRealDirectory(path);
}

}  // namespace kuasar
