// LinuxGuestSystem: GuestSystem on the real kernel. Processes are the agent's own
// children (LocalSpawner), their exits taken from the ExitRegistry the Reaper feeds.
// Thread-safe.
#pragma once

#include "runtime/guest/guest_system.h"
#include "runtime/guest/local_spawner.h"

namespace kuasar::guest {

class LinuxGuestSystem final : public GuestSystem {
 public:
  explicit LinuxGuestSystem(LocalSpawner* spawner) : spawner_(spawner) {}

  absl::Status SetHostname(std::string_view hostname) override;
  absl::Status WriteFile(const std::string& path, std::string_view contents) override;
  absl::Status WriteSysctl(const std::string& proc_path, std::string_view value) override;
  absl::Status SetClock(absl::Time time) override;
  absl::StatusOr<std::vector<NetLink>> ListLinks() override;
  absl::StatusOr<CommandResult> Run(const CommandSpec& spec) override;

 private:
  LocalSpawner* spawner_;
};

}  // namespace kuasar::guest
