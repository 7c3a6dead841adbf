// TaskClient: a blocking client of a pod's containerd Task API (v3) over ttrpc, dialled as
// containerd dials it after the sandboxer's Start: "ttrpc+unix://PATH", "unix://PATH" or a
// bare path, and "ttrpc+hvsock://PATH:PORT" / "hvsock://PATH:PORT" (hybrid vsock: the
// client writes "CONNECT <port>\n" on the unix socket and the VMM answers "OK <n>\n").
// Thread-safe (one ttrpc connection carries concurrent calls); Close() ends pending calls
// with UNAVAILABLE.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "containerd/task/v3/shim.pb.h"
#include "runtime/ttrpc/client.h"

namespace kuasar::python {

struct TaskStdio {
  std::string stdin_path;   // "" (none) or a FIFO path
  std::string stdout_path;  // "", a FIFO path or file:///abs/path
  std::string stderr_path;
  bool terminal = false;
};

struct RootfsMount {
  std::string type, source, target;
  std::vector<std::string> options;
};

class TaskClient {
 public:
  using WaitCallback = std::function<void(absl::StatusOr<containerd::task::v3::WaitResponse>)>;

  // Retries refused connections until `timeout` (the task socket may not be there yet).
  static absl::StatusOr<std::unique_ptr<TaskClient>> Connect(std::string_view address,
                                                             absl::Duration timeout);

  absl::StatusOr<uint32_t> Create(std::string_view id, std::string_view bundle,
                                  const std::vector<RootfsMount>& rootfs, const TaskStdio& stdio);
  absl::StatusOr<uint32_t> Start(std::string_view id, std::string_view exec_id);
  // `done` runs once, on the client's io thread, when the process has exited (or with
  // DEADLINE_EXCEEDED after `timeout`; InfiniteDuration waits for ever).
  void WaitAsync(std::string_view id, std::string_view exec_id, absl::Duration timeout,
                 WaitCallback done);
  absl::Status Kill(std::string_view id, std::string_view exec_id, uint32_t signal, bool all);
  absl::StatusOr<containerd::task::v3::DeleteResponse> Delete(std::string_view id,
                                                              std::string_view exec_id);
  // `process_json` is an OCI runtime-spec Process.
  absl::Status Exec(std::string_view id, std::string_view exec_id, std::string_view process_json,
                    const TaskStdio& stdio);
  absl::StatusOr<containerd::task::v3::StateResponse> State(std::string_view id,
                                                            std::string_view exec_id);
  absl::StatusOr<std::vector<uint32_t>> Pids(std::string_view id);
  // {"type": "io.containerd.cgroups.v1.Metrics", "metrics": {...}} (v1 or v2 cgroups).
  absl::StatusOr<std::string> StatsJson(std::string_view id);
  absl::Status CloseIo(std::string_view id, std::string_view exec_id, bool stdin);
  absl::Status Resize(std::string_view id, std::string_view exec_id, uint32_t width,
                      uint32_t height);
  absl::StatusOr<containerd::task::v3::ConnectResponse> ConnectInfo(std::string_view id);

  void Close();
  bool IsConnected() const { return client_->IsConnected(); }
  const std::string& address() const { return address_; }
  // Per-call deadline of every method but WaitAsync (default 60 s).
  void set_call_timeout(absl::Duration timeout) { call_timeout_ = timeout; }

 private:
  TaskClient(std::string address, std::unique_ptr<ttrpc::Client> client)
      : address_(std::move(address)), client_(std::move(client)) {}
  ttrpc::CallOptions Options() const;

  std::string address_;
  std::unique_ptr<ttrpc::Client> client_;
  absl::Duration call_timeout_ = absl::Seconds(60);
};

}  // namespace kuasar::python
