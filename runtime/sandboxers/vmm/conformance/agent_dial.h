// Test support for the driver contract suite: dial a guest agent over the AgentChannel a
// driver returned and make one ttrpc Check call on kuasar.agent.v1.Sandbox, as the
// sandboxer (and containerd, for hvsock://) does. Blocking; thread-safe.
#pragma once

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kuasar/agent/v1/agent.pb.h"
#include "runtime/sandboxers/vmm/hypervisor.h"

namespace kuasar::vmm {

// Retries (dial + Check) until `deadline`.
absl::StatusOr<agent::v1::CheckResponse> CheckAgent(const AgentChannel& channel,
                                                    absl::Time deadline);

}  // namespace kuasar::vmm
