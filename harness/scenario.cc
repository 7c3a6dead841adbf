#include "harness/scenario.h"

#include <toml++/toml.h>

#include "absl/strings/str_format.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/status_macros.h"
#include "runtime/core/toml_section.h"

namespace kuasar::harness {

std::string_view StartModeName(StartMode m) {
  switch (m) {
    case StartMode::kSerial:
      return "serial";
    case StartMode::kParallel:
      return "parallel";
    case StartMode::kGroups:
      return "groups";
  }
  return "?";
}

absl::StatusOr<Scenario> Scenario::Parse(std::string_view text, std::string_view source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s:%d:%d: %s", source, e.source().begin.line, e.source().begin.column,
        std::string_view(e.description())));
  }
  Scenario sc;
  TomlSection top(&root, "", std::string(source)), s(nullptr, "", "");
  RETURN_IF_ERROR(top.Sub("scenario", &s));
  RETURN_IF_ERROR(top.CheckNoUnknownKeys());
  RETURN_IF_ERROR(s.Get("name", &sc.name));
  int64_t pods = sc.pods, group = sc.group_size, containers = sc.containers_per_pod,
          warmup = sc.warmup_pods;
  RETURN_IF_ERROR(s.Get("pods", &pods, 1, 10000));
  RETURN_IF_ERROR(s.Get("group_size", &group, 1, 10000));
  RETURN_IF_ERROR(s.Get("containers_per_pod", &containers, 1, 64));
  RETURN_IF_ERROR(s.Get("warmup_pods", &warmup, 0, 100));
  std::string mode = "serial";
  RETURN_IF_ERROR(s.Get("mode", &mode));
  if (mode == "serial") {
    sc.mode = StartMode::kSerial;
  } else if (mode == "parallel") {
    sc.mode = StartMode::kParallel;
  } else if (mode == "groups") {
    sc.mode = StartMode::kGroups;
  } else {
    return s.Error("mode", absl::StrFormat("\"%s\" is not serial, parallel or groups", mode));
  }
  RETURN_IF_ERROR(s.Get("image", &sc.image));
  RETURN_IF_ERROR(s.Get("command", &sc.command));
  RETURN_IF_ERROR(s.Get("ready_line", &sc.ready_line));
  RETURN_IF_ERROR(s.Get("timeout_s", &sc.timeout_s, 1, 3600));
  RETURN_IF_ERROR(s.Get("remove_after", &sc.remove_after));
  std::vector<int64_t> pss_at(sc.pss_at.begin(), sc.pss_at.end());
  RETURN_IF_ERROR(s.Get("pss_at", &pss_at, 0, 10000));
  sc.pss_at.assign(pss_at.begin(), pss_at.end());
  RETURN_IF_ERROR(s.CheckNoUnknownKeys());
  sc.pods = static_cast<int>(pods);
  sc.group_size = static_cast<int>(group);
  sc.containers_per_pod = static_cast<int>(containers);
  sc.warmup_pods = static_cast<int>(warmup);
  if (sc.command.empty()) return s.Error("command", "must not be empty");
  if (sc.name.empty()) sc.name = absl::StrFormat("%s-%d", mode, sc.pods);
  return sc;
}

absl::StatusOr<Scenario> Scenario::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, 1 << 20));
  return Parse(text, path);
}

}  // namespace kuasar::harness
