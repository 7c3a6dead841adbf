// Comma-separated option strings as VMM command lines write them:
//   QEMU/StratoVirt: "socket,id=c0,path=/run/x.sock,server=on,wait=off" (",," is a comma;
//   a leading bare word is the implied key, e.g. the chardev backend or machine type),
//   Cloud Hypervisor: "path=/a,readonly=on,fd=[3,4]" (brackets and quotes keep commas).
// Plus the size and on/off values they take. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace kuasar::sim {

struct OptionList {
  std::string implied;  // the bare first word, when the caller allows one
  std::vector<std::pair<std::string, std::string>> items;  // in order; "flag" -> ("flag", "")

  bool Has(std::string_view key) const;
  std::optional<std::string> Get(std::string_view key) const;
  // Keys not in `known`, in order (for "Invalid parameter" errors).
  std::vector<std::string> Unknown(std::initializer_list<std::string_view> known) const;
};

OptionList ParseQemuOptions(std::string_view text, bool implied_first);
OptionList ParseClhOptions(std::string_view text);

// "512M", "1G", "2048" (in `default_unit` bytes), "4096k"; K/M/G/T are binary.
absl::StatusOr<uint64_t> ParseSize(std::string_view text, uint64_t default_unit);
// on/off/yes/no/true/false; a bare flag ("server") is on.
std::optional<bool> ParseToggle(std::string_view text);

}  // namespace kuasar::sim
