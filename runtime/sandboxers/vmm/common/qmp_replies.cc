#include "runtime/sandboxers/vmm/common/qmp_replies.h"

#include <limits>

namespace kuasar::vmm {

using nlohmann::json;

namespace {

const json* Member(const json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::optional<int64_t> Int(const json& obj, std::string_view key) {
  const json* v = Member(obj, key);
  if (v == nullptr) return std::nullopt;
  // An unsigned value above INT64_MAX converts to a negative one, which callers refuse.
  if (v->is_number_integer()) return v->get<int64_t>();
  return std::nullopt;
}

}  // namespace

std::string QmpString(const json& obj, std::string_view key, std::string_view fallback) {
  const json* v = Member(obj, key);
  if (v == nullptr || !v->is_string()) return std::string(fallback);
  return v->get<std::string>();
}

bool QmpBool(const json& obj, std::string_view key, bool fallback) {
  const json* v = Member(obj, key);
  if (v == nullptr || !v->is_boolean()) return fallback;
  return v->get<bool>();
}

std::string QmpRunStatus(const json& query_status) {
  return QmpString(query_status, "status", "unknown");
}

bool QmpChardevFrontendOpen(const json& query_chardev, std::string_view label) {
  if (!query_chardev.is_array()) return false;
  for (const json& c : query_chardev) {
    if (QmpString(c, "label") == label && QmpBool(c, "frontend-open")) return true;
  }
  return false;
}

absl::Time QmpEventTime(const json& event, absl::Time fallback) {
  const json* ts = Member(event, "timestamp");
  if (ts == nullptr) return fallback;
  std::optional<int64_t> s = Int(*ts, "seconds");
  std::optional<int64_t> us = Int(*ts, "microseconds");
  // QEMU sends seconds since the epoch and 0..999999 microseconds; anything else is not a
  // time we can use (and would overflow below).
  constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / 1'000'000 - 1;
  if (!s || !us || *s < 0 || *s > kMaxSeconds || *us < 0 || *us > 999'999) return fallback;
  return absl::FromUnixMicros(*s * 1'000'000 + *us);
}

QmpEventEffect InterpretQmpEvent(const QmpEvent& event, std::string_view agent_port_id) {
  QmpEventEffect effect;
  if (event.name == "VSERPORT_CHANGE") {
    if (!agent_port_id.empty() && QmpString(event.data, "id") == agent_port_id) {
      effect.agent_port_open = QmpBool(event.data, "open");
    }
  } else if (event.name == "SHUTDOWN") {
    effect.shutdown_reason = QmpString(event.data, "reason", "shutdown");
  } else if (event.name == "GUEST_PANICKED") {
    effect.shutdown_reason = "guest-panic";
  } else if (event.name == "DEVICE_DELETED") {
    std::string device = QmpString(event.data, "device");
    if (!device.empty()) effect.deleted_device = std::move(device);
  }
  return effect;
}

}  // namespace kuasar::vmm
