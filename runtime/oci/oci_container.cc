#include "runtime/oci/oci_container.h"

#include "absl/strings/str_format.h"

namespace kuasar {

nlohmann::json OciProcess::ToJson() const {
  return {{"exec_id", exec_id},
          {"pid", identity.pid},
          {"start_time", identity.start_time},
          {"status", static_cast<int>(status)},
          {"stdin", stdin_path},
          {"stdout", stdout_path},
          {"stderr", stderr_path},
          {"terminal", terminal},
          {"process_json", process_json},
          {"exit_status", exit.status},
          {"exited_at_ns", absl::ToUnixNanos(exit.at)}};
}

absl::StatusOr<OciProcess> OciProcess::FromJson(const nlohmann::json& j) {
  OciProcess p;
  try {
    p.exec_id = j.at("exec_id").get<std::string>();
    p.identity.pid = j.at("pid").get<pid_t>();
    p.identity.start_time = j.value("start_time", uint64_t{0});
    int status = j.at("status").get<int>();
    if (!containerd::v1::types::Status_IsValid(status)) {
      return absl::DataLossError(absl::StrFormat("bad process status %d", status));
    }
    p.status = static_cast<TaskStatus>(status);
    p.stdin_path = j.value("stdin", "");
    p.stdout_path = j.value("stdout", "");
    p.stderr_path = j.value("stderr", "");
    p.terminal = j.value("terminal", false);
    p.process_json = j.value("process_json", "");
    p.exit.status = j.value("exit_status", 0u);
    p.exit.at = absl::FromUnixNanos(j.value("exited_at_ns", int64_t{0}));
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrFormat("malformed process record: %s", e.what()));
  }
  return p;
}

OciProcess* OciContainer::Find(const std::string& exec_id) {
  if (exec_id.empty() || exec_id == id) return &init;
  auto it = execs.find(exec_id);
  return it == execs.end() ? nullptr : &it->second;
}

nlohmann::json OciContainer::ToJson() const {
  nlohmann::json mounts = nlohmann::json::array();
  for (const MountSpec& m : rootfs) {
    mounts.push_back({{"type", m.type}, {"source", m.source}, {"target", m.target},
                      {"options", m.options}});
  }
  nlohmann::json ex = nlohmann::json::object();
  for (const auto& [eid, p] : execs) ex[eid] = p.ToJson();
  return {{"id", id},         {"ns", ns},
          {"bundle", bundle}, {"rootfs", mounts},
          {"rootfs_mounted", rootfs_mounted},
          {"cgroups_path", cgroups_path},
          {"init", init.ToJson()},
          {"execs", ex}};
}

absl::StatusOr<std::unique_ptr<OciContainer>> OciContainer::FromJson(const nlohmann::json& j) {
  auto c = std::make_unique<OciContainer>();
  try {
    c->id = j.at("id").get<std::string>();
    c->ns = j.value("ns", "");
    c->bundle = j.at("bundle").get<std::string>();
    for (const auto& m : j.value("rootfs", nlohmann::json::array())) {
      c->rootfs.push_back({m.at("type").get<std::string>(), m.at("source").get<std::string>(),
                           m.value("target", ""), m.value("options", std::vector<std::string>{})});
    }
    c->rootfs_mounted = j.value("rootfs_mounted", false);
    c->cgroups_path = j.value("cgroups_path", "");
    auto init = OciProcess::FromJson(j.at("init"));
    if (!init.ok()) return init.status();
    c->init = std::move(*init);
    // A named copy: items() of a temporary would dangle in the range-for.
    const nlohmann::json execs = j.value("execs", nlohmann::json::object());
    for (const auto& [eid, pj] : execs.items()) {
      auto p = OciProcess::FromJson(pj);
      if (!p.ok()) return p.status();
      c->execs.emplace(eid, std::move(*p));
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrFormat("malformed container record: %s", e.what()));
  }
  return c;
}

}  // namespace kuasar
