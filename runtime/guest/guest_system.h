// GuestSystem: every effect the Sandbox service has on the machine it runs in (hostname,
// files, sysctls, clock, network links, processes), behind one small interface so the
// request handling above it can be tested and fuzzed against a fake that touches
// nothing. Which effects a mode permits is decided above (GuestCapabilities), not here.
// Implementations are thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kuasar::guest {

struct CommandSpec {
  std::vector<std::string> argv;
  std::optional<std::vector<std::string>> env;  // unset: the agent's own
  absl::Duration timeout = absl::Seconds(10);
  size_t output_limit = 1 << 20;  // per stream; the rest is read and dropped
};

struct CommandResult {
  int exit_code = 0;  // 128+N for a signal, as shells report it
  std::string stdout_data, stderr_data;
  bool stdout_truncated = false, stderr_truncated = false;
};

struct NetLink {
  std::string name;
  std::string mac;  // lower case, "aa:bb:cc:dd:ee:ff"
};

class GuestSystem {
 public:
  virtual ~GuestSystem() = default;
  virtual absl::Status SetHostname(std::string_view hostname) = 0;
  // Atomically replaces `path` (mode 0644), creating its directory.
  virtual absl::Status WriteFile(const std::string& path, std::string_view contents) = 0;
  // `proc_path` is under /proc/sys.
  virtual absl::Status WriteSysctl(const std::string& proc_path, std::string_view value) = 0;
  virtual absl::Status SetClock(absl::Time time) = 0;
  virtual absl::StatusOr<std::vector<NetLink>> ListLinks() = 0;
  // Runs argv to completion (or kills its process group at the timeout:
  // DEADLINE_EXCEEDED) and returns its exit code and output.
  virtual absl::StatusOr<CommandResult> Run(const CommandSpec& spec) = 0;
};

}  // namespace kuasar::guest
