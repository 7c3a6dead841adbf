// TtrpcTaskEndpoints: serves each sandbox's TaskService as containerd's Task API over
// ttrpc, on the sandbox's own unix socket (the address Start returned). Each sandbox
// gets a small ttrpc::Server with the task methods bound to its service; all of them
// share one io thread and one worker pool, so a pod costs a listener, not a thread.
// The handlers answer under both service names, containerd.task.v3.Task (containerd
// 2.x) and containerd.task.v2.Task (1.6/1.7): the two schemas are identical.
// Thread-safe; Stop must not run on the io thread.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "runtime/core/task_endpoints.h"
#include "runtime/ttrpc/server.h"

namespace kuasar {

// The ttrpc metadata key containerd puts the namespace in (containerd namespaces/ttrpc.go).
inline constexpr char kNamespaceMetadataKey[] = "containerd-namespace-ttrpc";

// Binds every Task API method of `service` onto `server` under both service names; Wait
// calls on tagged connections are recorded in `parked` while they wait.
absl::Status RegisterTaskService(ttrpc::Server& server, std::shared_ptr<TaskService> service,
                                 std::shared_ptr<ParkedCallStore> parked = nullptr);

class TtrpcTaskEndpoints final : public TaskEndpoints {
 public:
  explicit TtrpcTaskEndpoints(int worker_threads = 4);
  ~TtrpcTaskEndpoints() override;

  absl::Status Serve(const std::string& socket_path, std::shared_ptr<TaskService> service) override;
  absl::Status Register(const std::string& key, std::shared_ptr<TaskService> service,
                        std::shared_ptr<ParkedCallStore> parked = nullptr) override;
  absl::Status Adopt(const std::string& key, UniqueFd connection,
                     const std::string& connection_tag = "") override;
  void Stop(const std::string& key) override;
  size_t size() const;

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::thread_pool workers_;
  std::thread io_thread_;
  mutable std::mutex mu_;
  struct Endpoint {
    std::shared_ptr<ttrpc::Server> server;
    std::shared_ptr<ParkedCallStore> parked;
  };
  std::map<std::string, Endpoint> servers_;
};

}  // namespace kuasar
