// Guest network setup as `ip` commands: SetupSandbox's interfaces are found by MAC among
// the guest's links, renamed, given an MTU and addresses and brought up; routes follow.
// Planning is pure (validated request + current links -> argv lists, without the leading
// "ip"), so it is tested and fuzzed without touching a network. Busybox's `ip` and
// iproute2's accept the same argv.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kuasar/agent/v1/agent.pb.h"
#include "runtime/guest/guest_system.h"

namespace kuasar::guest {

using IpArgs = std::vector<std::string>;

absl::Status ValidateLinkName(std::string_view name);
// "10.0.0.1" or "fd00::1"; `ipv6` says which it must be.
absl::Status ValidateAddress(std::string_view address, bool ipv6);

// INVALID_ARGUMENT for a bad field, NOT_FOUND for a MAC no link has.
absl::StatusOr<std::vector<IpArgs>> PlanNetwork(const agent::v1::SetupSandboxRequest& req,
                                                const std::vector<NetLink>& links);

// An `ip` argv that tolerates "File exists" (an address or route already there).
bool IsIdempotentAdd(const IpArgs& args);

}  // namespace kuasar::guest
