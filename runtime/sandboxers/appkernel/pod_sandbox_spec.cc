#include "runtime/sandboxers/appkernel/pod_sandbox_spec.h"

#include "absl/strings/str_format.h"
#include "runtime/base/id_check.h"
#include "runtime/base/status_macros.h"

namespace kuasar {

nlohmann::json PodSandboxSpec(const PodSandboxSpecInput& in) {
  nlohmann::json network = {{"type", "network"}};
  if (!in.netns_path.empty()) network["path"] = in.netns_path;
  // PID, IPC, UTS and mount namespaces are the Sentry's own (virtual); only the network
  // namespace is a host one: runsc --network=sandbox runs netstack on its interfaces.
  return {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"args", {"/pause"}},
        {"cwd", "/"},
        {"env", {"PATH=/"}},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"noNewPrivileges", true}}},
      {"root", {{"path", in.rootfs}, {"readonly", true}}},
      {"hostname", in.hostname},
      {"mounts", nlohmann::json::array({{{"destination", "/proc"}, {"type", "proc"},
                                         {"source", "proc"}}})},
      {"annotations", {{kCriContainerType, "sandbox"}, {kCriSandboxId, in.sandbox_id}}},
      {"linux",
       {{"namespaces",
         {{{"type", "pid"}}, {{"type", "ipc"}}, {{"type", "uts"}}, {{"type", "mount"}},
          network}}}},
  };
}

absl::StatusOr<std::string> SandboxToJoin(const nlohmann::json& spec) {
  const nlohmann::json* ann = nullptr;
  if (spec.is_object() && spec.contains("annotations") && spec["annotations"].is_object()) {
    ann = &spec["annotations"];
  }
  if (ann == nullptr || !ann->contains(kCriContainerType)) return std::string();
  const nlohmann::json& type = (*ann)[kCriContainerType];
  if (!type.is_string()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("annotation %s is not a string", kCriContainerType));
  }
  if (type.get<std::string>() == "sandbox") return std::string();
  if (type.get<std::string>() != "container") {
    return absl::InvalidArgumentError(
        absl::StrFormat("annotation %s = \"%s\": want \"sandbox\" or \"container\"",
                        kCriContainerType, type.get<std::string>()));
  }
  if (!ann->contains(kCriSandboxId) || !(*ann)[kCriSandboxId].is_string()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "container of type \"container\" without a %s annotation: runsc cannot tell which "
        "pod sandbox it joins", kCriSandboxId));
  }
  std::string id = (*ann)[kCriSandboxId].get<std::string>();
  RETURN_IF_ERROR(ValidateId(id, kCriSandboxId));
  return id;
}

}  // namespace kuasar
