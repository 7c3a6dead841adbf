// The task-side state of one container of a pod: its init process and exec'd
// processes, with what survives a sandboxer restart serialized to JSON (inside the
// sandbox's record). Guarded by the owning OciTaskService.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "containerd/task/v3/shim.pb.h"
#include "runtime/base/process_identity.h"
#include "runtime/core/sandbox_record.h"
#include "runtime/oci/process_io.h"

namespace kuasar {

using TaskStatus = containerd::v1::types::Status;

struct ExitInfo {
  uint32_t status = 0;
  absl::Time at;
};

struct OciProcess {
  std::string exec_id;  // empty for the init process
  ProcessIdentity identity;
  TaskStatus status = containerd::v1::types::CREATED;
  std::string stdin_path, stdout_path, stderr_path;
  bool terminal = false;
  std::string process_json;  // exec processes: the OCI Process to run
  ExitInfo exit;
  std::unique_ptr<ProcessIo> io;
  std::vector<std::function<void(ExitInfo)>> waiters;
  bool exit_seen = false;  // the holder reported the exit

  nlohmann::json ToJson() const;
  static absl::StatusOr<OciProcess> FromJson(const nlohmann::json& j);
};

struct OciContainer {
  std::string id;
  std::string ns;  // containerd namespace
  std::string bundle;
  std::vector<MountSpec> rootfs;
  bool rootfs_mounted = false;
  std::string cgroups_path;
  OciProcess init;
  std::map<std::string, OciProcess> execs;
  std::mutex op_mu;  // one lifecycle operation at a time on this container

  OciProcess* Find(const std::string& exec_id);
  nlohmann::json ToJson() const;
  static absl::StatusOr<std::unique_ptr<OciContainer>> FromJson(const nlohmann::json& j);
};

}  // namespace kuasar
