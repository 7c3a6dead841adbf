// FakeGuestSystem: a GuestSystem that records what it is asked and touches nothing;
// Run answers from a script (default: exit 0, no output). For the Sandbox service's
// tests and the agent fuzzer. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/guest/guest_system.h"

namespace kuasar::guest::testing {

class FakeGuestSystem final : public GuestSystem {
 public:
  absl::Status SetHostname(std::string_view hostname) override {
    std::lock_guard<std::mutex> l(mu);
    this->hostname = std::string(hostname);
    return absl::OkStatus();
  }
  absl::Status WriteFile(const std::string& path, std::string_view contents) override {
    std::lock_guard<std::mutex> l(mu);
    files[path] = std::string(contents);
    return absl::OkStatus();
  }
  absl::Status WriteSysctl(const std::string& path, std::string_view value) override {
    std::lock_guard<std::mutex> l(mu);
    sysctls[path] = std::string(value);
    return absl::OkStatus();
  }
  absl::Status SetClock(absl::Time time) override {
    std::lock_guard<std::mutex> l(mu);
    clock = time;
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<NetLink>> ListLinks() override {
    std::lock_guard<std::mutex> l(mu);
    return links;
  }
  absl::StatusOr<CommandResult> Run(const CommandSpec& spec) override {
    std::function<absl::StatusOr<CommandResult>(const CommandSpec&)> fn;
    {
      std::lock_guard<std::mutex> l(mu);
      commands.push_back(spec.argv);
      fn = on_run;
    }
    if (fn) return fn(spec);
    return CommandResult{};
  }

  std::mutex mu;
  std::string hostname;
  std::map<std::string, std::string> files, sysctls;
  absl::Time clock = absl::InfinitePast();
  std::vector<NetLink> links;
  std::vector<std::vector<std::string>> commands;
  std::function<absl::StatusOr<CommandResult>(const CommandSpec&)> on_run;
};

}  // namespace kuasar::guest::testing
