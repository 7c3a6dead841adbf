// JsonParkedCalls: a ParkedCallStore kept in memory and mirrored, as JSON, into the
// sandbox's record, so a restarted sandboxer finds the Task.Wait calls containerd still
// waits on. Writes go through `post` (a worker pool), never on the caller's thread.
// Freeze() stops writing (the daemon is going down and the record must keep the calls).
// Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/core/task_endpoints.h"

namespace kuasar {

class JsonParkedCalls final : public ParkedCallStore,
                              public std::enable_shared_from_this<JsonParkedCalls> {
 public:
  using Persist = std::function<void(const nlohmann::json&)>;
  using Post = std::function<void(std::function<void()>)>;

  // `initial` is a previous ToJson() (or null). Create it with std::make_shared.
  JsonParkedCalls(const nlohmann::json& initial, Persist persist, Post post);

  void Park(const std::string& connection_tag, uint32_t stream_id, std::string request) override;
  void Unpark(const std::string& connection_tag, uint32_t stream_id) override;
  std::vector<std::pair<uint32_t, std::string>> Parked(
      const std::string& connection_tag) const override;

  void Freeze();
  nlohmann::json ToJson() const;
  size_t size() const;

 private:
  void Save();

  const Persist persist_;
  const Post post_;
  mutable std::mutex mu_;
  bool frozen_ = false;
  uint64_t version_ = 0, saved_version_ = 0;
  std::map<std::string, std::map<uint32_t, std::string>> calls_;
};

}  // namespace kuasar
