// TaskEndpoints: where a backend publishes a sandbox's TaskService for containerd to dial.
// The daemon implements it with a ttrpc server (one listening socket per sandbox); tests
// can call the TaskService directly. Thread-safe.
#pragma once

#include <memory>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "runtime/base/unique_fd.h"
#include "runtime/core/task_service.h"

namespace kuasar {

// Calls a TaskService parked (Task.Wait answers when a process exits) that must outlive a
// sandboxer crash: a connection kept open by someone else (the runc pod holder) is handed
// to the restarted sandboxer, which replays the parked requests on it so their answers
// still reach containerd. Keyed by the connection's tag and the call's stream id.
class ParkedCallStore {
 public:
  virtual ~ParkedCallStore() = default;
  // `request` is the serialized ttrpc.Request.
  virtual void Park(const std::string& connection_tag, uint32_t stream_id, std::string request) = 0;
  virtual void Unpark(const std::string& connection_tag, uint32_t stream_id) = 0;
  virtual std::vector<std::pair<uint32_t, std::string>> Parked(
      const std::string& connection_tag) const = 0;
};

class TaskEndpoints {
 public:
  virtual ~TaskEndpoints() = default;
  // Listens on `socket_path` (mode 0600) and serves `service` there.
  virtual absl::Status Serve(const std::string& socket_path,
                             std::shared_ptr<TaskService> service) = 0;
  // Serves `service` under `key` without listening: connections accepted elsewhere (the
  // runc pod holder owns the socket) are handed over with Adopt.
  // With `parked`, Task.Wait calls on adopted connections are recorded there and replayed
  // when the same connection (same tag) is adopted again after a restart.
  virtual absl::Status Register(const std::string& key, std::shared_ptr<TaskService> service,
                                std::shared_ptr<ParkedCallStore> parked = nullptr) = 0;
  virtual absl::Status Adopt(const std::string& key, UniqueFd connection,
                             const std::string& connection_tag = "") = 0;
  // Stops serving `key` (a socket path or a Register key) and closes its connections.
  virtual void Stop(const std::string& key) = 0;
};

}  // namespace kuasar
