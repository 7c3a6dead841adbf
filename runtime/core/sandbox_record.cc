#include "runtime/core/sandbox_record.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace kuasar {
namespace {

constexpr std::pair<SandboxState, std::string_view> kStateNames[] = {
    {SandboxState::kCreating, "creating"}, {SandboxState::kCreated, "created"},
    {SandboxState::kStarting, "starting"}, {SandboxState::kReady, "ready"},
    {SandboxState::kStopping, "stopping"}, {SandboxState::kStopped, "stopped"},
};

int64_t ToNanos(absl::Time t) { return absl::ToUnixNanos(t); }
absl::Time FromNanos(int64_t n) { return absl::FromUnixNanos(n); }

}  // namespace

std::string_view SandboxStateName(SandboxState s) {
  for (const auto& [state, name] : kStateNames) {
    if (state == s) return name;
  }
  return "unknown";
}

std::string_view CriStateName(SandboxState s) {
  return s == SandboxState::kReady ? "SANDBOX_READY" : "SANDBOX_NOTREADY";
}

nlohmann::json SandboxRecord::ToJson() const {
  nlohmann::json mounts = nlohmann::json::array();
  for (const MountSpec& m : rootfs) {
    mounts.push_back({{"type", m.type}, {"source", m.source}, {"target", m.target},
                      {"options", m.options}});
  }
  return {
      {"schema", schema},
      {"id", id},
      {"sandboxer", sandboxer},
      {"state", SandboxStateName(state)},
      {"netns_path", netns_path},
      {"rootfs", mounts},
      {"annotations", annotations},
      {"labels", labels},
      {"spec_json", spec_json},
      {"spec_type_url", spec_type_url},
      {"options_type_url", options_type_url},
      {"options_b64", absl::Base64Escape(options_bytes)},
      {"pid", pid},
      {"task_address", task_address},
      {"task_version", task_version},
      {"created_at_ns", ToNanos(created_at)},
      {"started_at_ns", ToNanos(started_at)},
      {"exited_at_ns", ToNanos(exited_at)},
      {"exit_status", exit_status},
      {"backend", backend},
  };
}

absl::StatusOr<SandboxRecord> SandboxRecord::FromJson(const nlohmann::json& j) {
  SandboxRecord r;
  try {
    r.schema = j.at("schema").get<int>();
    if (r.schema != 1) {
      return absl::FailedPreconditionError(absl::StrCat("unsupported record schema ", r.schema));
    }
    r.id = j.at("id").get<std::string>();
    r.sandboxer = j.value("sandboxer", "");
    std::string state = j.at("state").get<std::string>();
    bool known = false;
    for (const auto& [s, name] : kStateNames) {
      if (name == state) {
        r.state = s;
        known = true;
      }
    }
    if (!known) return absl::DataLossError(absl::StrCat("unknown state \"", state, "\""));
    r.netns_path = j.value("netns_path", "");
    for (const auto& m : j.value("rootfs", nlohmann::json::array())) {
      r.rootfs.push_back({m.at("type").get<std::string>(), m.at("source").get<std::string>(),
                          m.value("target", ""),
                          m.value("options", std::vector<std::string>{})});
    }
    r.annotations = j.value("annotations", std::map<std::string, std::string>{});
    r.labels = j.value("labels", std::map<std::string, std::string>{});
    r.spec_json = j.value("spec_json", "");
    r.spec_type_url = j.value("spec_type_url", "");
    r.options_type_url = j.value("options_type_url", "");
    if (!absl::Base64Unescape(j.value("options_b64", ""), &r.options_bytes)) {
      return absl::DataLossError("malformed sandbox record: options_b64 is not base64");
    }
    r.pid = j.value("pid", 0u);
    r.task_address = j.value("task_address", "");
    r.task_version = j.value("task_version", 3u);
    r.created_at = FromNanos(j.value("created_at_ns", int64_t{0}));
    r.started_at = FromNanos(j.value("started_at_ns", int64_t{0}));
    r.exited_at = FromNanos(j.value("exited_at_ns", int64_t{0}));
    r.exit_status = j.value("exit_status", 0u);
    r.backend = j.value("backend", nlohmann::json::object());
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat("malformed sandbox record: ", e.what()));
  }
  return r;
}

}  // namespace kuasar
