// The command line containerd gives a shim v2 binary (runtime/v2 README: "Commands"):
// Go-style flags (-namespace, -address, -publish-binary, -id, -bundle, -debug, either
// "-flag value" or "-flag=value", one or two dashes) followed by the action: start or
// delete. "serve" is this shim's own action: the detached per-pod daemon start launches.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace kuasar::shim {

struct ShimArgs {
  std::string action;  // "start", "delete" or "serve"
  std::string ns;      // containerd namespace
  std::string address;  // containerd's gRPC socket
  std::string publish_binary;
  std::string id;
  std::string bundle;  // the bundle dir; containerd also makes it our cwd
  bool debug = false;
  int ready_fd = -1;   // serve: where to report readiness
};

// INVALID_ARGUMENT names the flag that is unknown, repeated without value, or missing.
absl::StatusOr<ShimArgs> ParseShimArgs(const std::vector<std::string>& argv);

// What containerd needs from `start` and `delete` on stdout, and the per-pod socket.
struct ShimPaths {
  std::string state_dir;  // the shim's [sandboxer] state_dir
  std::string PodDir(std::string_view sandbox_id) const;
  std::string SocketPath(std::string_view sandbox_id) const;
};

// containerd.task.v2.DeleteResponse{pid, exit_status, exited_at=now} in protobuf wire form.
std::string EncodeDeleteResponse(uint32_t pid, uint32_t exit_status);

}  // namespace kuasar::shim
