// Cloud Hypervisor's command line (clap, cloud-hypervisor --help): the API socket and,
// when a payload (--kernel or --firmware) is given, a whole VmConfig that the VMM creates
// and boots at once, as the real binary does (Kuasar's CH driver starts it that way).
// Errors carry clap's or CH's wording; the caller prints them and exits 1 (2 for usage).
// Pure functions; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kuasar::sim::clh {

struct ClhOptions {
  std::string api_socket;                   // --api-socket PATH | path=PATH
  int api_fd = -1;                          // --api-socket fd=N (an inherited listening socket)
  std::optional<nlohmann::json> vm_config;  // set when the command line has a payload
  std::string log_file;
  int verbosity = 0;
  bool version = false;
  bool help = false;
};

// `args` exclude argv[0]. A usage error is INVALID_ARGUMENT with clap's text; a bad VM
// option is FAILED_PRECONDITION with CH's ("Error parsing --disk: unknown option: foo").
absl::StatusOr<ClhOptions> ParseClhArgs(const std::vector<std::string>& args);

}  // namespace kuasar::sim::clh
