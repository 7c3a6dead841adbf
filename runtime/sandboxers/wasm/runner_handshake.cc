#include "runtime/sandboxers/wasm/runner_handshake.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"

namespace kuasar {
namespace {

constexpr size_t kMaxReport = 8192;

void WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

absl::Status ParseReport(const std::string& text) {
  if (text == "OK\n") return absl::OkStatus();
  if (text.starts_with("ERR ")) {
    size_t nl = text.find('\n');
    int code = 0;
    if (nl != std::string::npos && absl::SimpleAtoi(text.substr(4, nl - 4), &code) && code > 0 &&
        code <= 16) {
      return absl::Status(static_cast<absl::StatusCode>(code), text.substr(nl + 1));
    }
  }
  return absl::InternalError(
      absl::StrFormat("wasm runner sent a garbled report \"%s\"", text.substr(0, 200)));
}

}  // namespace

std::string ReadyFifoPath(const std::string& state_dir) { return state_dir + "/ready"; }
std::string StartFifoPath(const std::string& state_dir) { return state_dir + "/start"; }

absl::StatusOr<RunnerHandshake> RunnerHandshake::Open(const std::string& state_dir) {
  // Non-blocking: ENXIO at once if nobody reads `ready`, rather than hanging.
  UniqueFd ready(::open(ReadyFifoPath(state_dir).c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  if (!ready) return ErrnoStatus(errno, "open", ReadyFifoPath(state_dir));
  UniqueFd start(::open(StartFifoPath(state_dir).c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!start) return ErrnoStatus(errno, "open", StartFifoPath(state_dir));
  return RunnerHandshake(std::move(ready), std::move(start));
}

absl::Status RunnerHandshake::ReportReady() {
  if (!ready_) return absl::FailedPreconditionError("already reported");
  WriteAll(ready_.get(), "OK\n");
  ready_.Reset();
  return absl::OkStatus();
}

void RunnerHandshake::ReportError(const absl::Status& status) {
  if (!ready_) return;
  std::string msg(status.message());
  if (msg.size() > kMaxReport - 64) msg.resize(kMaxReport - 64);
  WriteAll(ready_.get(), absl::StrFormat("ERR %d\n%s", static_cast<int>(status.code()), msg));
  ready_.Reset();
}

absl::Status RunnerHandshake::WaitForStart() {
  while (true) {
    pollfd p{start_.get(), POLLIN, 0};
    int r = ::poll(&p, 1, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoStatus(errno, "poll", "start fifo");
    char c;
    ssize_t n = ::read(start_.get(), &c, 1);
    if (n == 1) break;
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n == 0) return absl::CancelledError("the engine closed the start fifo without starting");
    return ErrnoStatus(errno, "read", "start fifo");
  }
  start_.Reset();
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> PrepareHandshake(const std::string& state_dir) {
  for (const std::string& path : {ReadyFifoPath(state_dir), StartFifoPath(state_dir)}) {
    ::unlink(path.c_str());
    if (::mkfifo(path.c_str(), 0600) != 0) return ErrnoStatus(errno, "mkfifo", path);
  }
  UniqueFd fd(::open(ReadyFifoPath(state_dir).c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open", ReadyFifoPath(state_dir));
  return fd;
}

absl::Status AwaitRunnerReady(int ready_fd, absl::Duration timeout,
                              const std::function<bool()>& runner_alive) {
  absl::Time deadline = absl::Now() + timeout;
  std::string text;
  while (true) {
    // A FIFO no writer ever opened reports nothing to poll, so a runner that dies before
    // opening it is noticed by `runner_alive`, checked between short polls.
    pollfd p{ready_fd, POLLIN, 0};
    int r = ::poll(&p, 1, 20);
    if (r < 0 && errno != EINTR) return ErrnoStatus(errno, "poll", "ready fifo");
    if (r > 0) {
      char buf[1024];
      ssize_t n = ::read(ready_fd, buf, sizeof(buf));
      if (n > 0) {
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > kMaxReport) return ParseReport(text);
        continue;
      }
      if (n == 0) {  // the runner closed its end
        if (text.empty()) break;
        return ParseReport(text);
      }
      if (errno != EAGAIN && errno != EINTR) return ErrnoStatus(errno, "read", "ready fifo");
    }
    if (!runner_alive()) break;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrFormat("the wasm runner was not ready within %s",
                                                         absl::FormatDuration(timeout)));
    }
  }
  return absl::InternalError("the wasm runner exited before it was ready");
}

absl::Status SignalRunnerStart(const std::string& state_dir) {
  std::string path = StartFifoPath(state_dir);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd) {
    if (errno == ENXIO) {
      return absl::FailedPreconditionError("no wasm runner is waiting to start (it exited)");
    }
    return ErrnoStatus(errno, "open", path);
  }
  if (::write(fd.get(), "S", 1) != 1) return ErrnoStatus(errno, "write", path);
  return absl::OkStatus();
}

}  // namespace kuasar
