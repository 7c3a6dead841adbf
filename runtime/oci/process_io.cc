#include "runtime/oci/process_io.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/unique_fd.h"

#include <spdlog/spdlog.h>

namespace kuasar {
namespace {

using boost::asio::posix::stream_descriptor;

constexpr size_t kOutputBuffer = 16 << 10;
constexpr size_t kInputBuffer = 4 << 10;

enum class Kind { kNone, kFifo, kFile };
struct Target {
  Kind kind = Kind::kNone;
  std::string path;
};

std::string PercentDecode(absl::string_view s) {
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// containerd's stdio strings: "" | path | fifo://path | file://path | binary://...
absl::StatusOr<Target> ParseStdio(absl::string_view stream, absl::string_view uri,
                                  bool allow_file) {
  Target t;
  if (uri.empty()) return t;
  absl::string_view rest = uri;
  if (absl::ConsumePrefix(&rest, "binary://")) {
    return absl::UnimplementedError(absl::StrFormat(
        "%s \"%s\": binary:// logging plugins are not supported by the runc sandboxer", stream,
        uri));
  }
  t.kind = Kind::kFifo;
  if (absl::ConsumePrefix(&rest, "file://")) {
    if (!allow_file) {
      return absl::InvalidArgumentError(absl::StrFormat("%s \"%s\": must be a FIFO", stream, uri));
    }
    t.kind = Kind::kFile;
    rest = rest.substr(0, rest.find('?'));
  } else if (!absl::ConsumePrefix(&rest, "fifo://") && absl::StrContains(rest, "://")) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s \"%s\": unknown stdio scheme", stream, uri));
  }
  t.path = t.kind == Kind::kFile ? PercentDecode(rest) : std::string(rest);
  if (t.path.empty() || t.path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s \"%s\": need an absolute path", stream, uri));
  }
  return t;
}

// O_RDWR on a FIFO never blocks on Linux, reader or not; the pipe buffers until
// containerd opens its reader.
absl::StatusOr<UniqueFd> OpenOutput(absl::string_view stream, const Target& t) {
  if (t.kind == Kind::kNone) return UniqueFd();
  int flags = O_RDWR | O_CLOEXEC;
  if (t.kind == Kind::kFile) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(t.path).parent_path(), ec);
    if (ec) return ErrnoStatus(ec.value(), absl::StrFormat("%s: mkdir for", stream), t.path);
    flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC;
  }
  UniqueFd fd(::open(t.path.c_str(), flags, 0640));
  if (!fd) return ErrnoStatus(errno, absl::StrFormat("%s: open", stream), t.path);
  return fd;
}

}  // namespace

struct ProcessIo::State : std::enable_shared_from_this<State> {
  explicit State(boost::asio::io_context& io) : io(io) {}

  // Copy loops (terminal); each is called with `mu` held.
  void ReadMaster();
  void WriteOut();
  void ReadIn();
  void WriteMaster();
  void OutputFinished(std::unique_lock<std::mutex>& l);

  boost::asio::io_context& io;
  std::mutex mu;
  bool closed = false;
  // Without a terminal: what the runtime inherits. With one: the ends we copy to/from.
  UniqueFd stdin_read, stdout_fd, stderr_fd;
  UniqueFd stdin_keepalive;  // a writer, so stdin is not at EOF before containerd attaches
  std::string console_path;
  UniqueFd console_listener;
  std::unique_ptr<stream_descriptor> master, in, out;
  std::vector<char> in_buf, out_buf;
  size_t in_len = 0, in_off = 0, out_len = 0, out_off = 0;
  bool output_done = false;
  std::vector<std::function<void()>> on_output_done;
};

void ProcessIo::State::ReadMaster() {
  master->async_read_some(
      boost::asio::buffer(out_buf),
      [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
        std::unique_lock<std::mutex> l(self->mu);
        if (self->closed || ec == boost::asio::error::operation_aborted) return;
        if (ec) return self->OutputFinished(l);  // EIO: no process holds the slave any more
        if (!self->out) return self->ReadMaster();  // no stdout: drain so the tty never fills
        self->out_len = n;
        self->out_off = 0;
        self->WriteOut();
      });
}

void ProcessIo::State::WriteOut() {
  out->async_write_some(
      boost::asio::buffer(out_buf.data() + out_off, out_len - out_off),
      [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
        std::unique_lock<std::mutex> l(self->mu);
        if (self->closed || ec == boost::asio::error::operation_aborted) return;
        if (ec) {
          spdlog::warn("op=console_copy stream=stdout err=\"{}\"; dropping further output",
                       ec.message());
          self->out.reset();
          return self->ReadMaster();
        }
        self->out_off += n;
        if (self->out_off < self->out_len) return self->WriteOut();
        self->ReadMaster();
      });
}

void ProcessIo::State::ReadIn() {
  in->async_read_some(boost::asio::buffer(in_buf),
                      [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
                        std::unique_lock<std::mutex> l(self->mu);
                        if (self->closed || ec == boost::asio::error::operation_aborted) return;
                        if (ec) {  // EOF: containerd's writer and our keep-alive are gone
                          self->in.reset();
                          return;
                        }
                        self->in_len = n;
                        self->in_off = 0;
                        self->WriteMaster();
                      });
}

void ProcessIo::State::WriteMaster() {
  master->async_write_some(
      boost::asio::buffer(in_buf.data() + in_off, in_len - in_off),
      [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
        std::unique_lock<std::mutex> l(self->mu);
        if (self->closed || ec == boost::asio::error::operation_aborted) return;
        if (ec) {
          self->in.reset();
          return;
        }
        self->in_off += n;
        if (self->in_off < self->in_len) return self->WriteMaster();
        self->ReadIn();
      });
}

void ProcessIo::State::OutputFinished(std::unique_lock<std::mutex>& l) {
  output_done = true;
  // Reads and writes alternate, so nothing is in flight on `out`: close our writer so
  // containerd's reader of the stdout FIFO sees EOF and completes the exec/attach.
  boost::system::error_code ec;
  if (out) out->close(ec);
  out.reset();
  stdout_fd.Reset();
  std::vector<std::function<void()>> callbacks = std::move(on_output_done);
  on_output_done.clear();
  l.unlock();
  for (auto& cb : callbacks) cb();
}

ProcessIo::ProcessIo(std::shared_ptr<State> state, bool terminal)
    : state_(std::move(state)), terminal_(terminal) {}

ProcessIo::~ProcessIo() { Close(); }

absl::StatusOr<std::unique_ptr<ProcessIo>> ProcessIo::Open(boost::asio::io_context& io,
                                                           const StdioPaths& paths,
                                                           const std::string& console_socket_path) {
  auto s = std::make_shared<State>(io);
  ASSIGN_OR_RETURN(Target in, ParseStdio("stdin", paths.stdin_path, false));
  ASSIGN_OR_RETURN(Target out, ParseStdio("stdout", paths.stdout_path, true));
  Target err;  // a terminal has one output stream
  if (!paths.terminal) {
    ASSIGN_OR_RETURN(err, ParseStdio("stderr", paths.stderr_path, true));
  }

  if (in.kind != Kind::kNone) {
    // O_NONBLOCK so the open does not wait for a writer; then our own keep-alive writer.
    s->stdin_read.Reset(::open(in.path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!s->stdin_read) return ErrnoStatus(errno, "stdin: open", in.path);
    struct stat st {};
    if (::fstat(s->stdin_read.get(), &st) == 0 && S_ISFIFO(st.st_mode)) {
      s->stdin_keepalive.Reset(::open(in.path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
      if (!s->stdin_keepalive) return ErrnoStatus(errno, "stdin: open keep-alive writer", in.path);
    }
    // The container expects a blocking stdin (the flag is shared with its copy).
    int fl = ::fcntl(s->stdin_read.get(), F_GETFL);
    if (!paths.terminal && fl >= 0) ::fcntl(s->stdin_read.get(), F_SETFL, fl & ~O_NONBLOCK);
  }
  ASSIGN_OR_RETURN(s->stdout_fd, OpenOutput("stdout", out));
  ASSIGN_OR_RETURN(s->stderr_fd, OpenOutput("stderr", err));

  if (!paths.terminal) {
    s->output_done = true;
    return std::unique_ptr<ProcessIo>(new ProcessIo(std::move(s), false));
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (console_socket_path.empty() || console_socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("console socket path \"%s\" is empty or too long", console_socket_path));
  }
  std::memcpy(addr.sun_path, console_socket_path.data(), console_socket_path.size());
  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener) return ErrnoStatus(errno, "socket", "console");
  ::unlink(console_socket_path.c_str());  // a leftover from a crashed run
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, "bind", console_socket_path);
  }
  if (::chmod(console_socket_path.c_str(), 0600) != 0 || ::listen(listener.get(), 1) != 0) {
    absl::Status st = ErrnoStatus(errno, "chmod/listen", console_socket_path);
    ::unlink(console_socket_path.c_str());
    return st;
  }
  s->console_path = console_socket_path;
  s->console_listener = std::move(listener);
  return std::unique_ptr<ProcessIo>(new ProcessIo(std::move(s), true));
}

std::array<int, 3> ProcessIo::RuntimeStdio() const {
  if (terminal_) return {-1, -1, -1};
  std::lock_guard<std::mutex> l(state_->mu);
  return {state_->stdin_read.get(), state_->stdout_fd.get(), state_->stderr_fd.get()};
}

void ProcessIo::ReleaseRuntimeStdio() {
  if (terminal_) return;
  std::lock_guard<std::mutex> l(state_->mu);
  state_->stdin_read.Reset();
  state_->stdout_fd.Reset();
  state_->stderr_fd.Reset();
}

absl::Status ProcessIo::AfterRuntimeStarted(absl::Duration timeout) {
  if (!terminal_) return absl::FailedPreconditionError("process has no terminal");
  UniqueFd listener;
  std::string path;
  {
    std::lock_guard<std::mutex> l(state_->mu);
    if (state_->closed) return absl::FailedPreconditionError("process IO is closed");
    listener = std::move(state_->console_listener);
    path = state_->console_path;
  }
  if (!listener) return absl::FailedPreconditionError("console already received");
  // Accept, receive and close the socket file without holding the lock: Close() may
  // come meanwhile, and the socket file goes away on every path out of here.
  struct Unlink {
    std::string p;
    ~Unlink() { ::unlink(p.c_str()); }
  } unlink_socket{path};
  absl::Time deadline = absl::Now() + timeout;
  auto wait = [&](int fd) -> absl::Status {
    while (true) {
      int ms = static_cast<int>(
          std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
      pollfd p{fd, POLLIN, 0};
      int r = ::poll(&p, 1, ms);
      if (r > 0) return absl::OkStatus();
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return ErrnoStatus(errno, "poll", path);
      return absl::DeadlineExceededError(absl::StrFormat(
          "the runtime sent no pty master on %s within %s", path, absl::FormatDuration(timeout)));
    }
  };
  RETURN_IF_ERROR(wait(listener.get()));
  UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn) return ErrnoStatus(errno, "accept", path);
  RETURN_IF_ERROR(wait(conn.get()));
  // The OCI console-socket protocol: one message, the master fd as SCM_RIGHTS (runc
  // adds the pty name as data, crun a byte).
  char data[4096];
  iovec iov{data, sizeof(data)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  if (::recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC) < 0) return ErrnoStatus(errno, "recvmsg", path);
  std::vector<UniqueFd> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.emplace_back(fd);
    }
  }
  if (fds.empty()) return absl::DataLossError(absl::StrFormat("no fd received on %s", path));
  if (!::isatty(fds[0].get())) {
    return absl::InvalidArgumentError(absl::StrFormat("the fd received on %s is not a tty", path));
  }

  std::lock_guard<std::mutex> l(state_->mu);
  State& s = *state_;
  if (s.closed) {
    return absl::FailedPreconditionError("process IO closed while receiving the console");
  }
  s.master = std::make_unique<stream_descriptor>(s.io, fds[0].Release());
  s.out_buf.resize(kOutputBuffer);
  s.in_buf.resize(kInputBuffer);
  if (s.stdout_fd) s.out = std::make_unique<stream_descriptor>(s.io, s.stdout_fd.Release());
  if (s.stdin_read) s.in = std::make_unique<stream_descriptor>(s.io, s.stdin_read.Release());
  s.ReadMaster();
  if (s.in) s.ReadIn();
  return absl::OkStatus();
}

void ProcessIo::CloseStdin() {
  std::lock_guard<std::mutex> l(state_->mu);
  state_->stdin_keepalive.Reset();
}

absl::Status ProcessIo::Resize(uint32_t width, uint32_t height) {
  if (!terminal_) return absl::FailedPreconditionError("process has no terminal");
  std::lock_guard<std::mutex> l(state_->mu);
  if (!state_->master) return absl::FailedPreconditionError("console not received yet");
  winsize ws{};
  ws.ws_col = static_cast<unsigned short>(width);
  ws.ws_row = static_cast<unsigned short>(height);
  if (::ioctl(state_->master->native_handle(), TIOCSWINSZ, &ws) != 0) {
    return ErrnoStatus(errno, "ioctl TIOCSWINSZ", "pty master");
  }
  return absl::OkStatus();
}

void ProcessIo::OnOutputDone(std::function<void()> callback) {
  std::unique_lock<std::mutex> l(state_->mu);
  if (state_->closed) return;
  if (!state_->output_done) {
    state_->on_output_done.push_back(std::move(callback));
    return;
  }
  l.unlock();
  callback();
}

void ProcessIo::Close() {
  std::lock_guard<std::mutex> l(state_->mu);
  State& s = *state_;
  if (s.closed) return;
  s.closed = true;
  s.on_output_done.clear();
  s.stdin_read.Reset();
  s.stdout_fd.Reset();
  s.stderr_fd.Reset();
  s.stdin_keepalive.Reset();
  // Closing cancels pending operations; their handlers hold `state_` and see `closed`.
  for (auto* d : {&s.master, &s.in, &s.out}) {
    boost::system::error_code ec;
    if (*d) (*d)->close(ec);
    d->reset();
  }
  if (s.console_listener) {
    s.console_listener.Reset();
    ::unlink(s.console_path.c_str());
  }
}

}  // namespace kuasar
