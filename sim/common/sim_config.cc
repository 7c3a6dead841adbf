#include "sim/common/sim_config.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_format.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/status_macros.h"
#include "runtime/core/toml_section.h"

namespace kuasar::sim {
namespace {

std::string ExeDir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : exe.parent_path().string();
}

bool IsFile(const std::string& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec);
}

absl::StatusOr<toml::table> ParseToml(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, 1 << 20));
  try {
    return toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrFormat("%s:%d:%d: %s", path, e.source().begin.line,
                                                      e.source().begin.column,
                                                      std::string(e.description())));
  }
}

absl::Status ReadAgent(TomlSection& s, AgentConfig* agent) {
  RETURN_IF_ERROR(s.Get("path", &agent->path));
  RETURN_IF_ERROR(s.Get("args", &agent->extra_args));
  RETURN_IF_ERROR(s.Get("vsock_port", &agent->vsock_port, 1, UINT32_MAX));
  RETURN_IF_ERROR(s.Get("serial_port_name", &agent->serial_port_name));
  std::string iso = "auto";
  RETURN_IF_ERROR(s.Get("isolation", &iso));
  if (iso == "auto") {
    agent->isolation = AgentIsolation::kAuto;
  } else if (iso == "full") {
    agent->isolation = AgentIsolation::kFull;
  } else if (iso == "user") {
    agent->isolation = AgentIsolation::kUser;
  } else if (iso == "none") {
    agent->isolation = AgentIsolation::kNone;
  } else {
    return s.Error("isolation", "expected \"auto\", \"full\", \"user\" or \"none\"");
  }
  return s.CheckNoUnknownKeys();
}

absl::Status ReadFaults(const toml::table& root, const std::string& path, FaultPlan* plan) {
  const toml::node* n = root.get("faults");
  if (n == nullptr) return absl::OkStatus();
  if (!n->is_table()) return absl::InvalidArgumentError(path + ": faults: expected a table");
  return Annotate(ApplyFaultsJson(TomlToJson(*n->as_table()), plan), path);
}

}  // namespace

std::string DefaultAgentPath() {
  std::string beside = ExeDir() + "/vmm-task";
  return IsFile(beside) ? beside : "vmm-task";
}

absl::Status ReadModelFile(const std::string& path, SimConfig* config) {
  ASSIGN_OR_RETURN(toml::table root, ParseToml(path));
  TomlSection top(&root, "", path);
  RETURN_IF_ERROR(BootModel::FromToml(top, &config->model));
  TomlSection agent(nullptr, "", ""), checks(nullptr, "", ""), faults(nullptr, "", "");
  RETURN_IF_ERROR(top.Sub("agent", &agent));
  RETURN_IF_ERROR(ReadAgent(agent, &config->agent));
  RETURN_IF_ERROR(top.Sub("checks", &checks));
  RETURN_IF_ERROR(checks.Get("files", &config->check_files));
  RETURN_IF_ERROR(checks.CheckNoUnknownKeys());
  RETURN_IF_ERROR(top.Sub("faults", &faults));  // marks the key; read below as JSON
  RETURN_IF_ERROR(ReadFaults(root, path, &config->faults));
  std::string personality;
  RETURN_IF_ERROR(top.Get("personality", &personality));  // documentation only
  return top.CheckNoUnknownKeys();
}

absl::StatusOr<SimConfig> LoadSimConfig(Personality personality, const SimFlags& flags) {
  SimConfig config;
  config.personality = personality;
  std::string model = flags.model;
  if (model.empty()) {
    std::string name = absl::StrFormat("%s.toml", PersonalityName(personality));
#ifdef KUASAR_SIM_MODEL_DIR
    if (IsFile(absl::StrFormat("%s/%s", KUASAR_SIM_MODEL_DIR, name))) {
      model = absl::StrFormat("%s/%s", KUASAR_SIM_MODEL_DIR, name);
    }
#endif
    std::string installed = ExeDir() + "/../share/kuasar/sim/" + name;
    if (model.empty() && IsFile(installed)) model = installed;
  }
  if (!model.empty()) {
    RETURN_IF_ERROR(ReadModelFile(model, &config));
    config.model_path = model;
  }
  if (!flags.faults.empty()) {
    ASSIGN_OR_RETURN(toml::table root, ParseToml(flags.faults));
    RETURN_IF_ERROR(ReadFaults(root, flags.faults, &config.faults));
  }
  if (!flags.agent.empty()) config.agent.path = flags.agent;
  if (config.agent.path.empty()) config.agent.path = DefaultAgentPath();
  if (flags.seed) {
    config.model.seed = *flags.seed;
    config.model.seeded = true;
  }
  if (flags.scale) config.model.scale = *flags.scale;
  config.run_dir = flags.run_dir;
  if (!flags.log_level.empty()) config.log_level = flags.log_level;
  return config;
}

}  // namespace kuasar::sim
