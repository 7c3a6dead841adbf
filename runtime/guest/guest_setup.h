// The pod-level files and kernel settings of SetupSandbox, validated and rendered
// without side effects: hostname rules, /etc/hosts and /etc/resolv.conf contents, and
// which sysctls a pod may set (only those the kernel keeps per namespace, as Kubernetes
// allows: kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, net.*).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "kuasar/agent/v1/agent.pb.h"

namespace kuasar::guest {

// RFC 1123 labels: [A-Za-z0-9-] separated by dots, at most 64 bytes in all.
absl::Status ValidateHostname(std::string_view hostname);

// localhost entries, the hostname on each interface address, then the request's lines.
absl::StatusOr<std::string> RenderHosts(const agent::v1::SetupSandboxRequest& req);

// "" when the request names no server, search domain or option.
absl::StatusOr<std::string> RenderResolvConf(const agent::v1::SetupSandboxRequest& req);

// The /proc/sys path of a namespaced sysctl ("net.ipv4.ip_forward" or
// "net/ipv4/ip_forward"); PERMISSION_DENIED for a host-wide one.
absl::StatusOr<std::string> SysctlPath(std::string_view key);
absl::Status ValidateSysctlValue(std::string_view value);

}  // namespace kuasar::guest
