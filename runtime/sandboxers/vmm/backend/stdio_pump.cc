#include "runtime/sandboxers/vmm/backend/stdio_pump.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "absl/strings/str_format.h"
#include "kuasar/agent/v1/agent.pb.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"

namespace kuasar {
namespace {

constexpr char kSandboxService[] = "kuasar.agent.v1.Sandbox";
constexpr size_t kChunk = 64 << 10;

absl::StatusOr<UniqueFd> OpenFifo(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open stdio fifo", path);
  return UniqueFd(fd);
}

// An output pipe: containerd's FIFO, or a log file named by a file:// URI.
absl::StatusOr<UniqueFd> OpenOutput(const StdioPump::Pipe& pipe) {
  if (!pipe.append_file) return OpenFifo(pipe.host_path, O_RDWR);
  int fd = ::open(pipe.host_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return ErrnoStatus(errno, "open stdio log file", pipe.host_path);
  return UniqueFd(fd);
}

}  // namespace

StdioPump::StdioPump(std::string name, Spec spec)
    : name_(std::move(name)), spec_(std::move(spec)) {}

absl::StatusOr<std::unique_ptr<StdioPump>> StdioPump::Open(std::string name, Spec spec) {
  std::unique_ptr<StdioPump> p(new StdioPump(std::move(name), std::move(spec)));
  for (UniqueFd* e : {&p->wake_fd_, &p->close_fd_}) {
    int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "eventfd");
    e->Reset(fd);
  }
  const Spec& s = p->spec_;
  if (!s.in.host_path.empty()) {
    ASSIGN_OR_RETURN(p->in_fd_, OpenFifo(s.in.host_path, O_RDONLY));
  }
  if (!s.out.host_path.empty()) {
    ASSIGN_OR_RETURN(p->out_fd_, OpenOutput(s.out));
  }
  if (!s.err.host_path.empty() && s.err.token != s.out.token) {
    ASSIGN_OR_RETURN(p->err_fd_, OpenOutput(s.err));
  }
  return p;
}

StdioPump::~StdioPump() {
  Stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void StdioPump::Start(ClientGetter client) {
  auto spawn = [&](auto fn) {
    ++running_;
    threads_.emplace_back([this, fn = std::move(fn)]() mutable {
      fn();
      --running_;
    });
  };
  if (out_fd_.valid()) {
    spawn([this, client, fd = out_fd_.Release()] { PumpOutput(client, spec_.out.token, fd); });
  }
  if (err_fd_.valid()) {
    spawn([this, client, fd = err_fd_.Release()] { PumpOutput(client, spec_.err.token, fd); });
  }
  if (in_fd_.valid()) spawn([this, client] { PumpInput(client); });
}

void StdioPump::CloseStdin() {
  close_stdin_ = true;
  Signal(close_fd_.get());
}

void StdioPump::Stop() {
  stop_ = true;
  Signal(wake_fd_.get());
}

void StdioPump::Signal(int event_fd) {
  // Never read back: once set, every poll on it returns, which is what a stop wants.
  uint64_t one = 1;
  (void)!::write(event_fd, &one, sizeof(one));
}

bool StdioPump::WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    if (stop_) return false;
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    pollfd fds[2] = {{fd, POLLOUT, 0}, {wake_fd_.get(), POLLIN, 0}};
    (void)::poll(fds, 2, -1);
  }
  return true;
}

void StdioPump::PumpOutput(ClientGetter getter, std::string token, int raw_fd) {
  UniqueFd fd(raw_fd);  // closing it is the EOF containerd waits for
  auto client = getter();
  if (!client.ok()) {
    spdlog::warn("io={} token={} op=read-stream error=\"{}\"", name_, token,
                 client.status().message());
    return;
  }
  agent::v1::ReadStreamRequest req;
  req.set_token(token);
  auto stream = (*client)->NewStream(kSandboxService, "ReadStream", {.server_streaming = true},
                                     req.SerializeAsString());
  if (!stream.ok()) {
    spdlog::warn("io={} token={} op=read-stream error=\"{}\"", name_, token,
                 stream.status().message());
    return;
  }
  agent::v1::StreamChunk chunk;
  size_t bytes = 0;
  while (true) {
    auto more = (*stream)->RecvMessage(&chunk);
    if (!more.ok() || !*more) break;
    bytes += chunk.data().size();
    if (!WriteAll(fd.get(), chunk.data())) {
      // Stopped (or the FIFO broke): the stream is abandoned, not awaited.
      spdlog::debug("io={} token={} op=read-stream stopped bytes={}", name_, token, bytes);
      return;
    }
  }
  absl::Status st = (*stream)->Finish();
  spdlog::debug("io={} token={} op=read-stream bytes={} status=\"{}\"", name_, token, bytes,
                st.ToString());
}

void StdioPump::PumpInput(ClientGetter getter) {
  const std::string& token = spec_.in.token;
  auto client = getter();
  if (!client.ok()) {
    spdlog::warn("io={} token={} op=write-stream error=\"{}\"", name_, token,
                 client.status().message());
    return;
  }
  auto stream = (*client)->NewStream(kSandboxService, "WriteStream", {.client_streaming = true});
  agent::v1::StreamChunk first;
  first.set_token(token);
  if (!stream.ok() || !(*stream)->SendMessage(first).ok()) {
    spdlog::warn("io={} token={} op=write-stream error=\"cannot open the stream\"", name_, token);
    return;
  }
  auto& s = *stream;
  const int fd = in_fd_.get();
  std::string buf(kChunk, '\0');
  size_t bytes = 0;
  // Sends what the FIFO holds now; false at its EOF (every writer came and went).
  auto drain = [&]() -> absl::StatusOr<bool> {
    while (true) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n > 0) {
        agent::v1::StreamChunk c;
        c.set_data(buf.data(), static_cast<size_t>(n));
        RETURN_IF_ERROR(s->SendMessage(c));
        bytes += static_cast<size_t>(n);
        continue;
      }
      if (n == 0) return false;
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return true;
      return ErrnoStatus(errno, "read stdin fifo", spec_.in.host_path);
    }
  };
  while (!stop_) {
    pollfd fds[3] = {{fd, POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}, {close_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0 && errno != EINTR) break;
    if (stop_) break;
    bool closing = close_stdin_;
    // Before any writer opened the FIFO poll reports nothing, so a 0 read here is a real EOF.
    bool readable = (fds[0].revents & (POLLIN | POLLHUP)) != 0;
    absl::StatusOr<bool> open = true;
    if (readable || closing) open = drain();
    if (!open.ok()) {
      spdlog::warn("io={} token={} op=write-stream error=\"{}\"", name_, token,
                   open.status().message());
      return;  // abandoned: the agent keeps stdin open
    }
    if (!*open || closing) {
      absl::Status st = s->CloseSend();
      if (st.ok()) st = s->Finish();
      spdlog::debug("io={} token={} op=write-stream bytes={} status=\"{}\"", name_, token, bytes,
                    st.ToString());
      return;
    }
  }
}

}  // namespace kuasar
