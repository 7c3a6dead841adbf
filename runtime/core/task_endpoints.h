// TaskEndpoints: where a backend publishes a sandbox's TaskService for containerd to dial.
// The daemon implements it with a ttrpc server (one listening socket per sandbox); tests
// can call the TaskService directly. Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "runtime/core/task_service.h"

namespace kuasar {

class TaskEndpoints {
 public:
  virtual ~TaskEndpoints() = default;
  // Listens on `socket_path` (mode 0600) and serves `service` there.
  virtual absl::Status Serve(const std::string& socket_path,
                             std::shared_ptr<TaskService> service) = 0;
  // Stops listening and closes that socket's connections; removes the file.
  virtual void Stop(const std::string& socket_path) = 0;
};

}  // namespace kuasar
