// What vmm-task is told on its command line: where to serve (unix sockets, vsock ports,
// an inherited fd, virtio-serial ports), how much of PID 1's job to do, which OCI
// runtime to drive and where its scratch state goes. Plain values; parsing is pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace kuasar::guest {

// vm: PID 1 of a VM (mounts, cgroups, modules, lo, power off on exit).
// namespace: PID 1 of fresh pid+mount namespaces on the host (the fake VMM): / rslave,
//   a fresh /proc, nothing else.
// none: an ordinary process (tests): a child subreaper; touches nothing host-wide.
enum class InitMode { kVm, kNamespace, kNone };

struct ListenAddress {
  enum class Kind { kUnix, kVsock };
  Kind kind = Kind::kUnix;
  std::string path;   // kUnix
  uint32_t port = 0;  // kVsock
};

struct AgentOptions {
  std::vector<ListenAddress> listen;
  std::vector<int> serve_fds;       // already-connected byte streams
  std::vector<std::string> serial;  // virtio-serial port names
  InitMode init = InitMode::kNone;
  std::string runtime = "auto";  // auto | crun | runc | a path
  std::string state_dir = "/run/kuasar-agent";
  std::string log_level = "info";
  int worker_threads = 8;  // Task API and short blocking calls
  int max_streams = 32;    // concurrent ReadStream/WriteStream calls
};

// "unix:/abs/path" or "vsock:PORT".
absl::StatusOr<ListenAddress> ParseListenAddress(std::string_view spec);
// "vm" | "namespace" | "none".
absl::StatusOr<InitMode> ParseInitMode(std::string_view mode);
std::string_view InitModeName(InitMode mode);
// Checks the whole set: at least one channel, absolute state dir, sane limits.
absl::Status ValidateOptions(const AgentOptions& options);

}  // namespace kuasar::guest
