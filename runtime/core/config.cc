#include "runtime/core/config.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/status_macros.h"
#include "runtime/core/toml_section.h"

namespace kuasar {
namespace {

absl::Status ReadSandboxer(TomlSection& s, SandboxerSection* out) {
  RETURN_IF_ERROR(s.Get("kind", &out->kind));
  if (std::find(std::begin(kSandboxKinds), std::end(kSandboxKinds), out->kind) ==
      std::end(kSandboxKinds)) {
    return s.Error("kind", absl::StrFormat("\"%s\" is not one of runc, vmm, wasm, appkernel",
                                           out->kind));
  }
  RETURN_IF_ERROR(s.Get("name", &out->name));
  RETURN_IF_ERROR(s.Get("listen", &out->listen));
  RETURN_IF_ERROR(s.Get("state_dir", &out->state_dir));
  RETURN_IF_ERROR(s.GetMode("socket_mode", &out->socket_mode));
  if ((out->socket_mode & 0007) != 0) {
    return s.Error("socket_mode", "other users must get no access (use 0600 or 0660)");
  }
  RETURN_IF_ERROR(s.Get("socket_group", &out->socket_group));
  RETURN_IF_ERROR(s.Get("log_level", &out->log_level));
  RETURN_IF_ERROR(s.Get("worker_threads", &out->worker_threads, 1, 256));
  for (auto [key, value] : {std::pair{"listen", &out->listen}, {"state_dir", &out->state_dir}}) {
    if (value->empty() || (*value)[0] != '/') {
      return s.Error(key, absl::StrFormat("must be an absolute path, got \"%s\"", *value));
    }
  }
  if (out->listen.size() >= 108) {
    return s.Error("listen", absl::StrFormat("unix socket path is %d bytes; the limit is 107",
                                             out->listen.size()));
  }
  return s.CheckNoUnknownKeys();
}

absl::Status ReadContainerd(TomlSection& s, ContainerdSection* out) {
  RETURN_IF_ERROR(s.Get("ttrpc_address", &out->ttrpc_address));
  RETURN_IF_ERROR(s.Get("task_api_version", &out->task_api_version, 2, 3));
  return s.CheckNoUnknownKeys();
}

}  // namespace

absl::StatusOr<Config> ParseConfig(std::string_view text, std::string_view source) {
  Config cfg;
  cfg.source = std::string(source);
  auto root = std::make_shared<toml::table>();
  try {
    *root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return absl::InvalidArgumentError(absl::StrFormat("%s:%d:%d: %s", source, b.line, b.column,
                                                      std::string_view(e.description())));
  }
  TomlSection top(root.get(), "", cfg.source);
  TomlSection sandboxer(nullptr, "", ""), containerd(nullptr, "", "");
  RETURN_IF_ERROR(top.Sub("sandboxer", &sandboxer));
  RETURN_IF_ERROR(top.Sub("containerd", &containerd));
  RETURN_IF_ERROR(ReadSandboxer(sandboxer, &cfg.sandboxer));
  RETURN_IF_ERROR(ReadContainerd(containerd, &cfg.containerd));
  cfg.root = std::move(root);
  return cfg;
}

absl::StatusOr<Config> LoadConfig(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, 1 << 20));
  return ParseConfig(text, path);
}

}  // namespace kuasar
