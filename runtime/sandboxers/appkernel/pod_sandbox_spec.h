// The OCI spec of a pod's runsc *sandbox container* (the pod's one Sentry, running a
// pause process), and how an app container's spec names the sandbox it joins: runsc
// honours containerd's CRI annotations (gVisor runsc/specutils/cri.go).
// Pure functions; thread-compatible.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace kuasar {

inline constexpr char kCriContainerType[] = "io.kubernetes.cri.container-type";
inline constexpr char kCriSandboxId[] = "io.kubernetes.cri.sandbox-id";

struct PodSandboxSpecInput {
  std::string sandbox_id;
  std::string rootfs;       // holds the static pause binary at /pause
  std::string netns_path;   // the pod's network namespace; "" = a new one (host-network pods)
  std::string hostname;
};

nlohmann::json PodSandboxSpec(const PodSandboxSpecInput& input);

// The sandbox an app container joins: its sandbox-id annotation when its container-type
// is "container"; "" when it is to be a sandbox of its own (type "sandbox" or none).
absl::StatusOr<std::string> SandboxToJoin(const nlohmann::json& spec);

}  // namespace kuasar
