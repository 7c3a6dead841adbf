// Firecracker's command line (firecracker --help): the API socket, instance id, config
// file, --no-api, --boot-timer, logging and limits. Errors carry Firecracker's wording;
// it exits with 153 (argument parsing) on them. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kuasar::sim::fc {

inline constexpr int kExitArgParsing = 153;
inline constexpr int kExitBadConfiguration = 152;

struct FcOptions {
  std::string api_sock = "/run/firecracker.socket";
  std::string id = "anonymous-instance";
  std::string config_file;
  std::string log_path;
  bool no_api = false;
  bool boot_timer = false;
  size_t payload_limit = 51200;  // --http-api-max-payload-size
  bool version = false;
  bool help = false;
};

absl::StatusOr<FcOptions> ParseFcArgs(const std::vector<std::string>& args);

}  // namespace kuasar::sim::fc
