// SandboxRecord: everything the sandboxer must remember about one sandbox across a
// restart. Serialized as the sandbox's JSON document in the StateStore. Plain data:
// the controller guards each record with its sandbox's mutex.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kuasar {

enum class SandboxState {
  kCreating,  // Create in progress (a crash here means: clean up on recovery)
  kCreated,   // resources prepared, nothing running
  kStarting,  // Start in progress
  kReady,     // running; the task address is live
  kStopping,
  kStopped,   // exited or stopped; Wait has an answer
};

std::string_view SandboxStateName(SandboxState s);
// The state string containerd's CRI expects: SANDBOX_READY or SANDBOX_NOTREADY.
std::string_view CriStateName(SandboxState s);

struct MountSpec {
  std::string type;
  std::string source;
  std::string target;
  std::vector<std::string> options;
};

struct SandboxRecord {
  int schema = 1;
  std::string id;
  std::string sandboxer;
  SandboxState state = SandboxState::kCreating;
  std::string netns_path;
  std::vector<MountSpec> rootfs;
  std::map<std::string, std::string> annotations;
  std::map<std::string, std::string> labels;
  // The sandbox's OCI runtime spec JSON as containerd sent it (may be empty).
  std::string spec_json;
  std::string spec_type_url;
  // Create's `options` Any; from containerd's CRI a runtime.v1.PodSandboxConfig.
  std::string options_type_url;
  std::string options_bytes;

  uint32_t pid = 0;
  std::string task_address;
  uint32_t task_version = 3;
  absl::Time created_at = absl::UnixEpoch();
  absl::Time started_at = absl::UnixEpoch();
  absl::Time exited_at = absl::UnixEpoch();
  uint32_t exit_status = 0;

  // Owned by the backend (holder pid and start time, VMM sockets, containers...).
  nlohmann::json backend = nlohmann::json::object();

  nlohmann::json ToJson() const;
  static absl::StatusOr<SandboxRecord> FromJson(const nlohmann::json& j);
};

}  // namespace kuasar
