// The pod's CNI network, carried into its VM: a tap in the pod's network namespace whose
// traffic is mirrored to and from the CNI interface (tc mirred, as Kata's "tcfilter"
// model), and the interface's MAC, addresses and routes for the guest to take over.
// Runs iproute2 with explicit argv inside the namespace (nsenter --net). Blocking.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kuasar/agent/v1/agent.pb.h"

namespace kuasar {

struct PodNetworkPlan {
  std::string netns_path;
  std::string host_interface;  // the CNI interface, usually eth0
  std::string tap;             // created by Mirror
  std::string mac;
  uint32_t mtu = 1500;
  std::vector<agent::v1::IPAddress> addresses;
  std::vector<agent::v1::Route> routes;
};

// Creates tap `tap_name` in `netns_path` mirrored with its first non-loopback interface.
// NOT_FOUND when the namespace has no such interface (host networking needs none).
absl::StatusOr<PodNetworkPlan> MirrorIntoTap(const std::string& netns_path,
                                             const std::string& tap_name);
// Removes the tap and the mirroring; missing pieces are fine.
void RemoveMirror(const std::string& netns_path, const std::string& tap_name,
                  const std::string& host_interface);

// A tap name for a sandbox: at most 15 bytes.
std::string TapNameFor(const std::string& sandbox_id);

}  // namespace kuasar
