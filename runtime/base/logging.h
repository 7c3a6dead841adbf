// Process-wide logging setup over spdlog. Log lines are one event each with
// key=value fields ("sandbox=ID op=start ms=12"). Call InitLogging once from main().
#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace kuasar {

// level: trace|debug|info|warn|error|off. Logs go to stderr.
absl::Status InitLogging(std::string_view level, std::string_view name = "kuasar");

}  // namespace kuasar

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "absl/strings/string_view.h"

// Debian's Abseil keeps absl::string_view distinct from std::string_view; let fmt and
// spdlog print it (status.message()) directly.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<std::string_view> {
  template <typename Ctx>
  auto format(absl::string_view v, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(std::string_view(v.data(), v.size()), ctx);
  }
};
