// -daemonize, as QEMU and StratoVirt do it: fork early (before any thread or socket), the
// parent waits until the child says it is ready (its sockets listen) and exits 0, or with
// the child's failure code; the child starts a new session and, once ready, points its
// standard streams at /dev/null (keep logs with -D FILE). Call from the main thread.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace kuasar::sim {

// Returns in the child only; the parent exits inside.
absl::Status Daemonize();
// In the daemon child: tell the waiting parent to exit 0 and detach stdio (stderr kept
// when it is a -D log file). No-op when not daemonized.
void DaemonReady(bool keep_stderr);
// In the daemon child: the parent exits with `code` (the child then exits too).
void DaemonFailed(int code);

// Writes "<pid>\n" to `path` (QEMU -pidfile, StratoVirt -pidfile).
absl::Status WritePidFile(const std::string& path);

}  // namespace kuasar::sim
