// Durable, atomic whole-file writes: a reader sees the old contents or the new, never a
// torn mix, even if the process is killed mid-write or the machine loses power.
// Thread-safe as long as two threads do not write the same path at once.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kuasar {

// Writes `contents` to a temp file beside `path`, fsyncs it, renames it over `path`
// and fsyncs the directory. Leaves no temp file behind on failure.
absl::Status WriteFileAtomically(const std::string& path, std::string_view contents,
                                 mode_t mode = 0600);

// Reads a whole regular file; refuses symlinks and files over `max_bytes`.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path,
                                          size_t max_bytes = 16 << 20);

// fsyncs a directory so a rename or unlink inside it is durable.
absl::Status SyncDirectory(const std::string& dir);

}  // namespace kuasar
