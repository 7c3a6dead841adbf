#include "runtime/shim/bundle_info.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/id_check.h"

namespace kuasar::shim {

absl::StatusOr<BundleInfo> ReadBundleInfo(const std::string& bundle, const std::string& id) {
  std::string path = bundle + "/config.json";
  auto text = ReadSmallFile(path, 4 << 20);
  if (!text.ok()) return text.status();
  nlohmann::json spec = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!spec.is_object()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: not a JSON object", path));
  }
  BundleInfo info;
  info.sandbox_id = id;
  auto annotations = spec.value("annotations", nlohmann::json::object());
  if (annotations.is_object()) {
    std::string type = annotations.value("io.kubernetes.cri.container-type", "sandbox");
    info.is_sandbox = type == "sandbox";
    if (!info.is_sandbox) {
      info.sandbox_id = annotations.value("io.kubernetes.cri.sandbox-id", "");
      if (info.sandbox_id.empty()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: container %s has no io.kubernetes.cri.sandbox-id annotation", path, id));
      }
    }
  }
  if (auto st = ValidateId(info.sandbox_id); !st.ok()) return st;
  if (spec.contains("hostname") && spec["hostname"].is_string()) {
    info.hostname = spec["hostname"].get<std::string>();
  }
  auto linux = spec.value("linux", nlohmann::json::object());
  for (const auto& ns : linux.value("namespaces", nlohmann::json::array())) {
    if (ns.is_object() && ns.value("type", "") == "network") {
      info.netns_path = ns.value("path", "");
    }
  }
  return info;
}

}  // namespace kuasar::shim
