#include "runtime/core/json_parked_calls.h"

#include "absl/strings/escaping.h"

namespace kuasar {

JsonParkedCalls::JsonParkedCalls(const nlohmann::json& initial, Persist persist, Post post)
    : persist_(std::move(persist)), post_(std::move(post)) {
  if (!initial.is_object()) return;
  for (const auto& [tag, calls] : initial.items()) {
    if (!calls.is_object()) continue;
    for (const auto& [stream, b64] : calls.items()) {
      std::string request;
      uint32_t id = static_cast<uint32_t>(std::strtoul(stream.c_str(), nullptr, 10));
      if (id != 0 && b64.is_string() && absl::Base64Unescape(b64.get<std::string>(), &request)) {
        calls_[tag][id] = std::move(request);
      }
    }
  }
}

nlohmann::json JsonParkedCalls::ToJson() const {
  std::lock_guard<std::mutex> l(mu_);
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [tag, calls] : calls_) {
    for (const auto& [id, request] : calls) {
      out[tag][std::to_string(id)] = absl::Base64Escape(request);
    }
  }
  return out;
}

size_t JsonParkedCalls::size() const {
  std::lock_guard<std::mutex> l(mu_);
  size_t n = 0;
  for (const auto& [tag, calls] : calls_) n += calls.size();
  return n;
}

void JsonParkedCalls::Save() {
  // Each write takes the latest table; a later write overtaking an earlier one is fine.
  post_([weak = weak_from_this()] {
    auto self = weak.lock();
    if (!self) return;
    {
      std::lock_guard<std::mutex> l(self->mu_);
      if (self->frozen_ || self->saved_version_ == self->version_) return;
      self->saved_version_ = self->version_;
    }
    self->persist_(self->ToJson());
  });
}

void JsonParkedCalls::Park(const std::string& tag, uint32_t stream_id, std::string request) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (frozen_) return;
    calls_[tag][stream_id] = std::move(request);
    ++version_;
  }
  Save();
}

void JsonParkedCalls::Unpark(const std::string& tag, uint32_t stream_id) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (frozen_) return;
    auto it = calls_.find(tag);
    if (it == calls_.end() || it->second.erase(stream_id) == 0) return;
    if (it->second.empty()) calls_.erase(it);
    ++version_;
  }
  Save();
}

std::vector<std::pair<uint32_t, std::string>> JsonParkedCalls::Parked(const std::string& tag) const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::pair<uint32_t, std::string>> out;
  auto it = calls_.find(tag);
  if (it == calls_.end()) return out;
  for (const auto& [id, request] : it->second) out.emplace_back(id, request);
  return out;
}

void JsonParkedCalls::Freeze() {
  std::lock_guard<std::mutex> l(mu_);
  frozen_ = true;
}

}  // namespace kuasar
