#include "runtime/guest/agent_options.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace kuasar::guest {

absl::StatusOr<ListenAddress> ParseListenAddress(std::string_view spec) {
  absl::string_view rest(spec.data(), spec.size());
  ListenAddress a;
  if (absl::ConsumePrefix(&rest, "unix:")) {
    a.kind = ListenAddress::Kind::kUnix;
    a.path = std::string(rest);
    if (a.path.empty() || a.path[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrFormat("--listen %s: a unix socket needs an absolute path", spec));
    }
    if (a.path.size() >= 108) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--listen %s: socket path longer than 107 bytes", spec));
    }
    return a;
  }
  if (absl::ConsumePrefix(&rest, "vsock:")) {
    a.kind = ListenAddress::Kind::kVsock;
    if (!absl::SimpleAtoi(rest, &a.port) || a.port == 0 || a.port == UINT32_MAX) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--listen %s: the vsock port must be a number in 1..4294967294", spec));
    }
    return a;
  }
  return absl::InvalidArgumentError(
      absl::StrFormat("--listen %s: expected unix:PATH or vsock:PORT", spec));
}

absl::StatusOr<InitMode> ParseInitMode(std::string_view mode) {
  if (mode == "vm") return InitMode::kVm;
  if (mode == "namespace") return InitMode::kNamespace;
  if (mode == "none") return InitMode::kNone;
  return absl::InvalidArgumentError(
      absl::StrFormat("--init %s: expected vm, namespace or none", mode));
}

std::string_view InitModeName(InitMode mode) {
  switch (mode) {
    case InitMode::kVm:
      return "vm";
    case InitMode::kNamespace:
      return "namespace";
    case InitMode::kNone:
      break;
  }
  return "none";
}

absl::Status ValidateOptions(const AgentOptions& o) {
  if (o.listen.empty() && o.serve_fds.empty() && o.serial.empty()) {
    return absl::InvalidArgumentError("nothing to serve: give --listen, --serve-fd or --serial");
  }
  if (o.state_dir.empty() || o.state_dir[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrFormat("--state-dir %s: must be an absolute path", o.state_dir));
  }
  // Console sockets live in <state>/s; keep room for "/s/conNNNNNN.sock" in sun_path.
  if (o.state_dir.size() > 80) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--state-dir %s: longer than 80 bytes (console socket paths)", o.state_dir));
  }
  for (int fd : o.serve_fds) {
    if (fd < 3) {
      return absl::InvalidArgumentError(absl::StrFormat("--serve-fd %d: must be 3 or more", fd));
    }
  }
  if (o.worker_threads < 2 || o.worker_threads > 256 || o.max_streams < 1 || o.max_streams > 1024) {
    return absl::InvalidArgumentError("worker threads must be 2..256 and max streams 1..1024");
  }
  return absl::OkStatus();
}

}  // namespace kuasar::guest
