// The sandboxer daemon's configuration, read from one TOML file. Sections:
//   [sandboxer]  kind, listen socket, state dir, socket permissions, logging
//   [containerd] where to publish task events
// Each backend reads its own section ([runc], [hypervisor], ...) from `root` through
// TomlSection, so adding a backend never touches this file. Documented in docs/config.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <toml++/toml.h>

#include "absl/status/statusor.h"

namespace kuasar {

inline constexpr std::string_view kSandboxKinds[] = {"runc", "vmm", "wasm", "appkernel"};

struct SandboxerSection {
  std::string kind = "runc";
  // The proxy plugin name containerd knows us by ([proxy_plugins.NAME]).
  std::string name = "kuasar";
  // gRPC sandbox-controller socket.
  std::string listen = "/run/kuasar/sandboxer.sock";
  // Per-sandbox state (JSON records, task sockets, bundles).
  std::string state_dir = "/run/kuasar/state";
  uint32_t socket_mode = 0660;
  // Group owning the sockets (name or number); empty keeps the daemon's group.
  std::string socket_group;
  std::string log_level = "info";
  // Threads for blocking lifecycle work (process spawns, VM boots).
  int64_t worker_threads = 8;
};

struct ContainerdSection {
  // containerd's ttrpc socket, where TaskExit/TaskOOM/... are forwarded.
  std::string ttrpc_address = "/run/containerd/containerd.sock.ttrpc";
  // Task API version announced in Start (containerd 2.x wants 3).
  int64_t task_api_version = 3;
};

struct Config {
  SandboxerSection sandboxer;
  ContainerdSection containerd;
  // The whole parsed document, for backend sections.
  std::shared_ptr<const toml::table> root;
  // File name (or "<string>") used in error messages.
  std::string source;
};

absl::StatusOr<Config> ParseConfig(std::string_view text, std::string_view source = "<string>");
absl::StatusOr<Config> LoadConfig(const std::string& path);

}  // namespace kuasar
