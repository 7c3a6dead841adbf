#include "sim/firecracker/fc_cli.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace kuasar::sim::fc {
namespace {

const char* const kWithValue[] = {"--api-sock",
                                  "--id",
                                  "--config-file",
                                  "--log-path",
                                  "--level",
                                  "--module",
                                  "--metrics-path",
                                  "--seccomp-filter",
                                  "--start-time-us",
                                  "--start-time-cpu-us",
                                  "--parent-cpu-time-us",
                                  "--http-api-max-payload-size",
                                  "--mmds-size-limit",
                                  "--metadata",
                                  "--describe-snapshot"};
const char* const kFlags[] = {"--no-api",          "--boot-timer", "--show-level",
                              "--show-log-origin", "--no-seccomp", "--enable-pci",
                              "--version",         "--help",       "-h",
                              "--snapshot-version"};

absl::Status ArgError(std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrFormat("Arguments parsing error: %s\n\nFor more information try --help.", what));
}

}  // namespace

absl::StatusOr<FcOptions> ParseFcArgs(const std::vector<std::string>& args) {
  FcOptions o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    bool flag = false, valued = false;
    for (const char* f : kFlags) flag = flag || a == f;
    for (const char* f : kWithValue) valued = valued || a == f;
    if (flag) {
      if (a == "--no-api") o.no_api = true;
      if (a == "--boot-timer") o.boot_timer = true;
      if (a == "--version") o.version = true;
      if (a == "--help" || a == "-h") o.help = true;
      continue;
    }
    if (!valued) {
      return ArgError(absl::StrFormat(
          "Found argument '%s' which wasn't expected, or isn't valid in this context.", a));
    }
    if (i + 1 >= args.size() || args[i + 1].rfind("--", 0) == 0) {
      return ArgError(
          absl::StrFormat("The argument '%s' requires a value, but none was supplied", a));
    }
    const std::string& v = args[++i];
    if (a == "--api-sock") o.api_sock = v;
    if (a == "--id") {
      if (v.empty() || v.size() > 64 ||
          v.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") !=
              std::string::npos) {
        return ArgError(absl::StrFormat("Invalid instance ID: %s", v));
      }
      o.id = v;
    }
    if (a == "--config-file") o.config_file = v;
    if (a == "--log-path") o.log_path = v;
    if (a == "--http-api-max-payload-size" && !absl::SimpleAtoi(v, &o.payload_limit)) {
      return ArgError(absl::StrFormat("Invalid value for --http-api-max-payload-size: %s", v));
    }
  }
  if (o.no_api && o.config_file.empty()) {
    return ArgError("Missing argument: config-file. The argument 'no-api' requires it.");
  }
  return o;
}

}  // namespace kuasar::sim::fc
