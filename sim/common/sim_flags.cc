#include "sim/common/sim_flags.h"

#include <cstdlib>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace kuasar::sim {
namespace {

const char* Env(const char* name) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? v : nullptr;
}

absl::Status SetFlag(SimFlags* f, std::string_view name, const std::string& value) {
  if (name == "personality") {
    f->personality = PersonalityFromName(value);
    if (!f->personality) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--personality %s: expected cloud-hypervisor, firecracker, qemu-system-x86_64 or "
          "stratovirt",
          value));
    }
  } else if (name == "agent") {
    f->agent = value;
  } else if (name == "model") {
    f->model = value;
  } else if (name == "faults") {
    f->faults = value;
  } else if (name == "seed") {
    uint64_t seed = 0;
    if (!absl::SimpleAtoi(value, &seed)) {
      return absl::InvalidArgumentError(absl::StrFormat("--seed %s: expected an integer", value));
    }
    f->seed = seed;
  } else if (name == "model-scale") {
    double scale = 0;
    if (!absl::SimpleAtod(value, &scale) || !(scale >= 0) || scale > 1000) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--model-scale %s: expected a number in [0, 1000]", value));
    }
    f->scale = scale;
  } else if (name == "run-dir") {
    f->run_dir = value;
  } else if (name == "sim-log-level") {
    f->log_level = value;
  }
  return absl::OkStatus();
}

bool IsSimFlag(std::string_view name) {
  return name == "personality" || name == "agent" || name == "model" || name == "faults" ||
         name == "seed" || name == "model-scale" || name == "run-dir" || name == "sim-log-level";
}

}  // namespace

absl::StatusOr<SimFlags> ExtractSimFlags(std::vector<std::string>* args) {
  SimFlags flags;
  std::vector<std::string> rest;
  for (size_t i = 0; i < args->size(); ++i) {
    const std::string& a = (*args)[i];
    if (a.rfind("--", 0) != 0) {
      rest.push_back(a);
      continue;
    }
    std::string_view body = std::string_view(a).substr(2);
    size_t eq = body.find('=');
    std::string_view name = body.substr(0, eq);
    if (!IsSimFlag(name)) {
      rest.push_back(a);
      continue;
    }
    std::string value;
    if (eq != std::string_view::npos) {
      value = std::string(body.substr(eq + 1));
    } else if (i + 1 < args->size()) {
      value = (*args)[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrFormat("--%s needs a value", name));
    }
    if (absl::Status st = SetFlag(&flags, name, value); !st.ok()) return st;
  }
  *args = std::move(rest);

  struct EnvFlag {
    const char* env;
    const char* name;
  };
  static constexpr EnvFlag kEnv[] = {
      {"KUASAR_FAKE_VMM_PERSONALITY", "personality"},
      {"KUASAR_AGENT", "agent"},
      {"KUASAR_FAKE_VMM_MODEL", "model"},
      {"KUASAR_FAKE_VMM_FAULTS", "faults"},
      {"KUASAR_FAKE_VMM_SEED", "seed"},
      {"KUASAR_FAKE_VMM_SCALE", "model-scale"},
      {"KUASAR_FAKE_VMM_RUN_DIR", "run-dir"},
      {"KUASAR_FAKE_VMM_LOG", "sim-log-level"},
  };
  SimFlags from_env;
  for (const EnvFlag& e : kEnv) {
    if (const char* v = Env(e.env)) {
      if (absl::Status st = SetFlag(&from_env, e.name, v); !st.ok()) {
        return absl::InvalidArgumentError(absl::StrFormat("%s: %s", e.env, st.message()));
      }
    }
  }
  if (!flags.personality) flags.personality = from_env.personality;
  if (flags.agent.empty()) flags.agent = from_env.agent;
  if (flags.model.empty()) flags.model = from_env.model;
  if (flags.faults.empty()) flags.faults = from_env.faults;
  if (!flags.seed) flags.seed = from_env.seed;
  if (!flags.scale) flags.scale = from_env.scale;
  if (flags.run_dir.empty()) flags.run_dir = from_env.run_dir;
  if (flags.log_level.empty()) flags.log_level = from_env.log_level;
  return flags;
}

}  // namespace kuasar::sim
