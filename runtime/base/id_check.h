// Identifier and path checks at every trust boundary: ids from containerd, paths built
// from them, and files the sandboxer opens inside its state directory.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kuasar {

inline constexpr size_t kMaxIdLength = 128;

// Accepts [A-Za-z0-9][A-Za-z0-9_.-]{0,127}; `what` names the id in the error
// ("sandbox id", "container id", ...).
absl::Status ValidateId(std::string_view id, std::string_view what = "id");

// Joins `root` and a validated id into a path that cannot leave `root`.
absl::StatusOr<std::string> PathUnder(std::string_view root, std::string_view id,
                                      std::string_view what = "id");

// Fails unless `path` is a directory that is not a symlink (lstat), so a symlink
// planted in the state dir cannot redirect the sandboxer's writes.
absl::Status CheckRealDirectory(const std::string& path);

// Creates `path` (mode 0700 unless told otherwise) if missing, then CheckRealDirectory.
absl::Status EnsurePrivateDirectory(const std::string& path, unsigned mode = 0700);

}  // namespace kuasar
