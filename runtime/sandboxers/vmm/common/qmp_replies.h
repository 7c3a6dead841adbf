// Reading what a VMM sent over QMP without trusting its shape. Every function here is
// total: a missing key, a value of the wrong type or a reply that is not an object gives
// the fallback, never an exception, so a confused or hostile VMM cannot throw out of an
// event callback on the io thread and take the sandboxer (and every pod) down with it.
// nlohmann's json::value() is not safe for this: it throws when the key holds another type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "absl/time/time.h"
#include "runtime/sandboxers/vmm/common/qmp_client.h"

namespace kuasar::vmm {

// obj[key] when obj is an object and that member is a string (a bool), else `fallback`.
std::string QmpString(const nlohmann::json& obj, std::string_view key,
                      std::string_view fallback = "");
bool QmpBool(const nlohmann::json& obj, std::string_view key, bool fallback = false);

// The "status" of a query-status reply ("running", "paused", "shutdown", ...), or
// "unknown" when the reply does not say.
std::string QmpRunStatus(const nlohmann::json& query_status);

// Whether a query-chardev reply lists the chardev `label` with its frontend open.
bool QmpChardevFrontendOpen(const nlohmann::json& query_chardev, std::string_view label);

// An event's "timestamp" ({"seconds": S, "microseconds": US}); `fallback` when it is
// missing, malformed or out of range.
absl::Time QmpEventTime(const nlohmann::json& event, absl::Time fallback);

// What the QEMU and StratoVirt drivers take from one event.
struct QmpEventEffect {
  std::optional<bool> agent_port_open;        // VSERPORT_CHANGE for `agent_port_id`
  std::optional<std::string> shutdown_reason;  // SHUTDOWN ("guest-shutdown", ...), GUEST_PANICKED
  std::optional<std::string> deleted_device;   // DEVICE_DELETED's device id
};
// `agent_port_id` empty: VSERPORT_CHANGE is ignored (drivers without virtio-serial).
QmpEventEffect InterpretQmpEvent(const QmpEvent& event, std::string_view agent_port_id);

}  // namespace kuasar::vmm
