// Unix socket files the daemons listen on: clearing a stale one left by a crash
// (but never stealing a live listener's path), and setting mode and group.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace kuasar {

// Before bind(): fails if something listens at `path` or it is not a socket; removes a
// dead socket file; creates the parent directory (0700) if missing.
absl::Status PrepareSocketPath(const std::string& path);

// chmod `path` to `mode`; chgrp to `group` (a name or a number) unless empty.
absl::Status SetSocketAccess(const std::string& path, unsigned mode, std::string_view group);

}  // namespace kuasar
