#include "runtime/shim/shim_args.h"

#include <map>

#include "absl/strings/str_format.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "google/protobuf/timestamp.pb.h"
#include "containerd/task/v3/shim.pb.h"
#include "runtime/base/socket_path.h"

namespace kuasar::shim {

absl::StatusOr<ShimArgs> ParseShimArgs(const std::vector<std::string>& argv) {
  ShimArgs a;
  const std::map<std::string, std::string*, std::less<>> strings = {
      {"namespace", &a.ns}, {"address", &a.address}, {"publish-binary", &a.publish_binary},
      {"id", &a.id},        {"bundle", &a.bundle}};
  for (size_t i = 1; i < argv.size(); ++i) {
    std::string_view arg = argv[i];
    if (arg.size() < 2 || arg[0] != '-') {
      if (!a.action.empty()) {
        return absl::InvalidArgumentError(absl::StrFormat("unexpected argument \"%s\"", arg));
      }
      a.action = std::string(arg);
      continue;
    }
    arg.remove_prefix(arg.starts_with("--") ? 2 : 1);
    std::string name(arg), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    if (name == "debug") {
      a.debug = !has_value || value == "true" || value == "1";
      continue;
    }
    if (name == "v" || name == "version") {
      a.action = "version";
      continue;
    }
    auto take = [&]() -> absl::StatusOr<std::string> {
      if (has_value) return value;
      if (i + 1 >= argv.size()) {
        return absl::InvalidArgumentError(absl::StrFormat("flag -%s needs a value", name));
      }
      return argv[++i];
    };
    if (auto it = strings.find(name); it != strings.end()) {
      auto v = take();
      if (!v.ok()) return v.status();
      *it->second = *v;
    } else if (name == "ready-fd") {
      auto v = take();
      if (!v.ok()) return v.status();
      if (!absl::SimpleAtoi(*v, &a.ready_fd) || a.ready_fd < 3) {
        return absl::InvalidArgumentError(absl::StrFormat("-ready-fd: bad fd \"%s\"", *v));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrFormat("unknown flag -%s", name));
    }
  }
  if (a.action.empty()) return absl::InvalidArgumentError("no action (start, delete) given");
  if (a.action != "start" && a.action != "delete" && a.action != "serve" &&
      a.action != "version") {
    return absl::InvalidArgumentError(absl::StrFormat("unknown action \"%s\"", a.action));
  }
  if (a.action != "version" && a.id.empty()) {
    return absl::InvalidArgumentError("flag -id is required");
  }
  return a;
}

std::string ShimPaths::PodDir(std::string_view sandbox_id) const {
  return absl::StrFormat("%s/shim/%s", state_dir, sandbox_id);
}

std::string ShimPaths::SocketPath(std::string_view sandbox_id) const {
  return SocketDirFor(state_dir, sandbox_id) + "/shim.sock";
}

std::string EncodeDeleteResponse(uint32_t pid, uint32_t exit_status) {
  ::containerd::task::v3::DeleteResponse r;
  r.set_pid(pid);
  r.set_exit_status(exit_status);
  absl::Time now = absl::Now();
  r.mutable_exited_at()->set_seconds(absl::ToUnixSeconds(now));
  r.mutable_exited_at()->set_nanos(static_cast<int32_t>(absl::ToUnixNanos(now) % 1000000000));
  return r.SerializeAsString();
}

}  // namespace kuasar::shim
