// Fault injection plan: which API calls to refuse or slow down, and what to do to the
// guest (hang its boot, kill its agent, drop its channel) or to the VMM (crash). One
// schema, read from the model's [faults] TOML table or from JSON sent to the simulator's
// fault API (REST PUT /kuasar/faults, QMP kuasar-faults); see docs/fake-vmm.md.
// Pure data and functions; not thread-safe.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kuasar::sim {

// A refuse or slow rule. `method` is an HTTP method or "*"; `path` an exact REST path or
// QMP command name, or "*". For QMP the method is ignored.
struct FaultRule {
  std::string method = "*";
  std::string path = "*";
  int status = 0;        // refuse: HTTP status; 0 = the VMM's usual error status
  std::string message;   // refuse: error text; empty = a default naming the fault
  int64_t delay_ms = 0;  // slow: added before the call is handled
  int64_t times = -1;    // how many calls it applies to; -1 = all

  bool Matches(std::string_view method, std::string_view path) const;
};

struct FaultPlan {
  std::vector<FaultRule> refuse;
  std::vector<FaultRule> slow;
  bool hang_boot = false;              // the guest never reaches init: no agent
  int64_t crash_after_ms = -1;         // the VMM dies by crash_signal this long after arming
  int crash_signal = 9;                // SIGKILL
  int64_t kill_agent_after_ms = -1;    // SIGKILL the agent, counted from its start
  int64_t drop_channel_after_ms = -1;  // close the agent's side of its channel

  // A refusal for this call, counting it against the rule's `times`; null if none.
  const FaultRule* TakeRefusal(std::string_view method, std::string_view path);
  // Total delay for this call (counting it against each matching rule).
  int64_t TakeDelayMs(std::string_view method, std::string_view path);
};

// Applies a JSON fault document onto *plan: {"clear": true} first resets it; other keys
// replace theirs ("refuse"/"slow" arrays replace the lists). Unknown keys are errors.
absl::Status ApplyFaultsJson(const nlohmann::json& doc, FaultPlan* plan);
nlohmann::json FaultsToJson(const FaultPlan& plan);

// A TOML table as JSON (for [faults], so both sources share ApplyFaultsJson).
nlohmann::json TomlToJson(const toml::table& table);

// "SIGKILL", "KILL", "9" -> 9.
absl::StatusOr<int> ParseSignal(const nlohmann::json& v);

}  // namespace kuasar::sim
