#include "sim/common/fault_plan.h"

#include <csignal>
#include <cstring>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"

namespace kuasar::sim {
namespace {

using nlohmann::json;

absl::Status Bad(std::string_view key, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrFormat("faults.%s: %s", key, what));
}

absl::StatusOr<int64_t> Millis(const json& v, std::string_view key) {
  if (!v.is_number_integer() || v.get<int64_t>() < -1 || v.get<int64_t>() > 86400000) {
    return Bad(key, "expected milliseconds (an integer, -1 for off)");
  }
  return v.get<int64_t>();
}

absl::StatusOr<FaultRule> ParseRule(const json& r, std::string_view list, bool slow) {
  if (!r.is_object()) return Bad(list, "expected an array of tables");
  FaultRule rule;
  for (const auto& [k, v] : r.items()) {
    if (k == "method" || k == "path" || k == "command" || k == "message") {
      if (!v.is_string()) return Bad(absl::StrFormat("%s.%s", list, k), "expected a string");
      if (k == "method") rule.method = v.get<std::string>();
      if (k == "path" || k == "command") rule.path = v.get<std::string>();
      if (k == "message") rule.message = v.get<std::string>();
    } else if (k == "status" && !slow) {
      if (!v.is_number_integer() || v.get<int>() < 100 || v.get<int>() > 599) {
        return Bad(absl::StrFormat("%s.status", list), "expected an HTTP status 100..599");
      }
      rule.status = v.get<int>();
    } else if (k == "delay_ms" && slow) {
      ASSIGN_OR_RETURN(rule.delay_ms, Millis(v, "slow.delay_ms"));
    } else if (k == "times") {
      ASSIGN_OR_RETURN(rule.times, Millis(v, absl::StrFormat("%s.times", list)));
    } else {
      return Bad(absl::StrFormat("%s.%s", list, k), "unknown key");
    }
  }
  return rule;
}

json RuleToJson(const FaultRule& r, bool slow) {
  json j = {{"method", r.method}, {"path", r.path}, {"times", r.times}};
  if (slow) {
    j["delay_ms"] = r.delay_ms;
  } else {
    j["status"] = r.status;
    j["message"] = r.message;
  }
  return j;
}

}  // namespace

bool FaultRule::Matches(std::string_view m, std::string_view p) const {
  if (times == 0) return false;
  return (method == "*" || m.empty() || method == m) && (path == "*" || path == p);
}

const FaultRule* FaultPlan::TakeRefusal(std::string_view method, std::string_view path) {
  for (FaultRule& r : refuse) {
    if (r.Matches(method, path)) {
      if (r.times > 0) --r.times;
      return &r;
    }
  }
  return nullptr;
}

int64_t FaultPlan::TakeDelayMs(std::string_view method, std::string_view path) {
  int64_t total = 0;
  for (FaultRule& r : slow) {
    if (r.Matches(method, path)) {
      if (r.times > 0) --r.times;
      total += r.delay_ms;
    }
  }
  return total;
}

absl::StatusOr<int> ParseSignal(const json& v) {
  if (v.is_number_integer()) {
    int s = v.get<int>();
    if (s >= 1 && s < NSIG) return s;
  } else if (v.is_string()) {
    std::string name = v.get<std::string>();
    if (name.rfind("SIG", 0) == 0) name = name.substr(3);
    for (int s = 1; s < NSIG; ++s) {
      const char* abbrev = sigabbrev_np(s);
      if (abbrev != nullptr && name == abbrev) return s;
    }
  }
  return Bad("crash_signal", "expected a signal name like \"SIGSEGV\" or a number");
}

absl::Status ApplyFaultsJson(const json& doc, FaultPlan* plan) {
  if (!doc.is_object()) return absl::InvalidArgumentError("faults: expected a JSON object");
  FaultPlan next = *plan;
  if (auto it = doc.find("clear"); it != doc.end()) {
    if (!it->is_boolean()) return Bad("clear", "expected true or false");
    if (it->get<bool>()) next = FaultPlan();
  }
  for (const auto& [k, v] : doc.items()) {
    if (k == "clear") continue;
    if (k == "refuse" || k == "slow") {
      if (!v.is_array()) return Bad(k, "expected an array of tables");
      std::vector<FaultRule> rules;
      for (const json& r : v) {
        ASSIGN_OR_RETURN(FaultRule rule, ParseRule(r, k, k == "slow"));
        rules.push_back(std::move(rule));
      }
      (k == "refuse" ? next.refuse : next.slow) = std::move(rules);
    } else if (k == "hang_boot") {
      if (!v.is_boolean()) return Bad(k, "expected true or false");
      next.hang_boot = v.get<bool>();
    } else if (k == "crash_after_ms") {
      ASSIGN_OR_RETURN(next.crash_after_ms, Millis(v, k));
    } else if (k == "crash_signal") {
      ASSIGN_OR_RETURN(next.crash_signal, ParseSignal(v));
    } else if (k == "kill_agent_after_ms") {
      ASSIGN_OR_RETURN(next.kill_agent_after_ms, Millis(v, k));
    } else if (k == "drop_channel_after_ms") {
      ASSIGN_OR_RETURN(next.drop_channel_after_ms, Millis(v, k));
    } else {
      return Bad(k, "unknown key");
    }
  }
  *plan = std::move(next);
  return absl::OkStatus();
}

json FaultsToJson(const FaultPlan& plan) {
  json refuse = json::array(), slow = json::array();
  for (const FaultRule& r : plan.refuse) refuse.push_back(RuleToJson(r, false));
  for (const FaultRule& r : plan.slow) slow.push_back(RuleToJson(r, true));
  const char* abbrev = sigabbrev_np(plan.crash_signal);
  return {{"refuse", refuse},
          {"slow", slow},
          {"hang_boot", plan.hang_boot},
          {"crash_after_ms", plan.crash_after_ms},
          {"crash_signal", absl::StrFormat("SIG%s", abbrev ? abbrev : "?")},
          {"kill_agent_after_ms", plan.kill_agent_after_ms},
          {"drop_channel_after_ms", plan.drop_channel_after_ms}};
}

json TomlToJson(const toml::table& table) {
  json out = json::object();
  for (const auto& [key, node] : table) {
    std::string k(key.str());
    auto convert = [](const toml::node& n, auto& self) -> json {
      if (const auto* t = n.as_table()) {
        json o = json::object();
        for (const auto& [kk, nn] : *t) o[std::string(kk.str())] = self(nn, self);
        return o;
      }
      if (const auto* a = n.as_array()) {
        json arr = json::array();
        for (const toml::node& e : *a) arr.push_back(self(e, self));
        return arr;
      }
      if (n.is_string()) return *n.value<std::string>();
      if (n.is_integer()) return *n.value<int64_t>();
      if (n.is_floating_point()) return *n.value<double>();
      if (n.is_boolean()) return *n.value<bool>();
      return nullptr;  // dates and times: no fault key takes one
    };
    out[k] = convert(node, convert);
  }
  return out;
}

}  // namespace kuasar::sim
