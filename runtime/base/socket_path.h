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

// A short per-object directory for unix sockets: <root>/s/<16 hex digits of a stable
// hash of id>. Sockets must fit sun_path (107 bytes) while containerd's ids are 64
// characters, so sockets never live under <root>/.../<id>/.
std::string SocketDirFor(std::string_view root, std::string_view id);

// Fails with a clear error if `dir` + "/" + the longest socket name would not fit.
absl::Status CheckSocketDirFits(std::string_view dir, size_t longest_name);

}  // namespace kuasar
