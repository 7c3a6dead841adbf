// StdioPump: one process's stdio between containerd's FIFOs on the host and the guest
// agent's "kuasar-stream://<token>" streams (agent.proto: Sandbox.ReadStream for each
// output, Sandbox.WriteStream for stdin), over the agent's ttrpc channel. Each output's
// FIFO is closed once its stream ends, which is the EOF containerd waits for before it
// deletes a task. One thread per direction, because the ttrpc client's stream calls
// block; Stop wakes them, Finished says when they are all gone. Thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/base/unique_fd.h"
#include "runtime/ttrpc/client.h"

namespace kuasar {

class StdioPump {
 public:
  struct Pipe {
    std::string host_path;  // containerd's FIFO; empty: not used
    std::string token;      // the agent's stream token
    bool append_file = false;  // host_path is a log file (a file:// URI) to append to
  };
  // err.token == out.token: both outputs share one stream (and one FIFO).
  struct Spec {
    Pipe in, out, err;
  };
  using ClientGetter = std::function<absl::StatusOr<std::shared_ptr<ttrpc::Client>>()>;

  // Opens the host FIFOs without blocking (outputs O_RDWR: a reader may come later;
  // stdin O_RDONLY: it reads EOF only after a writer came and went).
  static absl::StatusOr<std::unique_ptr<StdioPump>> Open(std::string name, Spec spec);
  ~StdioPump();  // Stop(), then joins (callers make sure the streams can end: see Stop)

  // Starts the threads; `client` is called on them.
  void Start(ClientGetter client);
  // containerd closed stdin (Task.CloseIO): forward what is readable, then end the stream.
  void CloseStdin();
  // Outputs stop writing and abandon their streams at the next chunk; stdin abandons its
  // stream. A thread blocked in a ttrpc call ends when the agent ends the stream or the
  // client is closed.
  void Stop();
  bool Finished() const { return running_.load() == 0; }
  bool has_stdin() const { return in_fd_.valid(); }
  const std::string& name() const { return name_; }

 private:
  StdioPump(std::string name, Spec spec);
  void PumpOutput(ClientGetter client, std::string token, int fd);
  void PumpInput(ClientGetter client);
  bool WriteAll(int fd, std::string_view data);
  static void Signal(int event_fd);

  const std::string name_;
  const Spec spec_;
  UniqueFd in_fd_, out_fd_, err_fd_;
  UniqueFd wake_fd_;   // Stop
  UniqueFd close_fd_;  // CloseStdin
  std::atomic<bool> stop_{false}, close_stdin_{false};
  std::atomic<int> running_{0};
  std::vector<std::thread> threads_;
};

}  // namespace kuasar
