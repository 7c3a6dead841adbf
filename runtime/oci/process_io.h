// ProcessIo: the stdio of one container process (init or exec) as containerd hands it
// over: FIFO paths (or file:// URIs) in CreateTaskRequest / ExecProcessRequest.
//
// Without a terminal nothing is copied: the FIFOs are opened so the OCI runtime passes
// them straight to the container as fds 0/1/2, and the sandboxer only keeps stdin's
// keep-alive writer (dropped by CloseStdin, i.e. Task.CloseIO). With a terminal the
// runtime sends the pty master over a console socket and ProcessIo copies stdin FIFO ->
// master -> stdout FIFO with async operations on the io_context (no thread per process).
// Thread-safe: any method may race with the io_context's thread and with Close().
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kuasar {

// Each of the three is empty (/dev/null), a FIFO path ("fifo://" prefix allowed) or,
// for stdout/stderr, "file:///abs/path" (appended to, parents created). "binary://"
// logging plugins are UNIMPLEMENTED.
struct StdioPaths {
  std::string stdin_path;
  std::string stdout_path;
  std::string stderr_path;
  bool terminal = false;
};

class ProcessIo {
 public:
  // Opens every stream without blocking, whether or not containerd has opened its
  // ends yet. With a terminal, also listens (mode 0600) on `console_socket_path`, the
  // path to give the runtime as --console-socket; it is ignored otherwise.
  static absl::StatusOr<std::unique_ptr<ProcessIo>> Open(boost::asio::io_context& io,
                                                         const StdioPaths& paths,
                                                         const std::string& console_socket_path);
  ~ProcessIo();  // Close()
  ProcessIo(const ProcessIo&) = delete;
  ProcessIo& operator=(const ProcessIo&) = delete;

  bool terminal() const { return terminal_; }
  // The fds to make the runtime's (and so the container's) 0/1/2; -1 means /dev/null.
  // All -1 with a terminal (the pty is the container's stdio).
  std::array<int, 3> RuntimeStdio() const;
  // Closes our copies once the runtime has its own (keeps stdin's keep-alive writer).
  void ReleaseRuntimeStdio();

  // Terminal only, after the runtime's create/exec returned: accepts its connection on
  // the console socket, receives the pty master (SCM_RIGHTS), removes the socket file
  // and starts copying. DEADLINE_EXCEEDED if no runtime connected within `timeout`.
  absl::Status AfterRuntimeStarted(absl::Duration timeout);

  // Drops the keep-alive writer: the process reads EOF once containerd has closed its
  // writer too (Task.CloseIO with stdin=true). Idempotent.
  void CloseStdin();
  // TIOCSWINSZ on the pty master. FAILED_PRECONDITION without a terminal or before
  // AfterRuntimeStarted.
  absl::Status Resize(uint32_t width, uint32_t height);

  // Runs `callback` once all output has been copied: with a terminal when the master
  // reads EOF/EIO (every holder of the pty slave exited) and what was read is written
  // out; without one at once. Runs on the io thread, or on the caller's if output is
  // already done. Never runs after Close(). Output copying waits on the stdout FIFO's
  // reader, so a caller that must not hang (exit reporting) bounds its wait.
  void OnOutputDone(std::function<void()> callback);

  // Stops copying and closes every fd and the console socket. Idempotent.
  void Close();

 private:
  struct State;
  ProcessIo(std::shared_ptr<State> state, bool terminal);

  std::shared_ptr<State> state_;
  const bool terminal_;
};

}  // namespace kuasar
