#include "runtime/guest/host_session_relay.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <optional>

#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/ttrpc/frame.h"
#include "runtime/ttrpc/wire.h"

namespace kuasar::guest {
namespace {

using ttrpc::DecodedFrame;
using ttrpc::FrameDecoder;
using ttrpc::MessageType;

// Host bytes waiting for the agent beyond this stop reads from the host (backpressure).
constexpr size_t kMaxPending = 8 << 20;

enum class Io { kOk, kClosed };

// Reads what is there into `decoder`. kClosed on EOF or a hard error.
Io ReadInto(int fd, FrameDecoder& decoder) {
  char buf[64 * 1024];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      decoder.Feed(std::string_view(buf, static_cast<size_t>(n)));
      if (static_cast<size_t>(n) < sizeof(buf)) return Io::kOk;
      continue;
    }
    if (n == 0) return Io::kClosed;
    if (errno == EINTR) continue;
    return (errno == EAGAIN || errno == EWOULDBLOCK) ? Io::kOk : Io::kClosed;
  }
}

// Writes from `data` at `*off`; kClosed on a hard error.
Io WriteFrom(int fd, const std::string& data, size_t* off) {
  while (*off < data.size()) {
    ssize_t n = ::send(fd, data.data() + *off, data.size() - *off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != ENOTSOCK) {
      if (errno == EINTR) continue;
      return (errno == EAGAIN || errno == EWOULDBLOCK) ? Io::kOk : Io::kClosed;
    }
    if (n < 0) n = ::write(fd, data.data() + *off, data.size() - *off);  // a port, not a socket
    if (n < 0) {
      if (errno == EINTR) continue;
      return (errno == EAGAIN || errno == EWOULDBLOCK) ? Io::kOk : Io::kClosed;
    }
    *off += static_cast<size_t>(n);
  }
  return Io::kOk;
}

std::string Reencode(const DecodedFrame& f) {
  return ttrpc::EncodeFrame(f.header.stream_id, static_cast<MessageType>(f.header.type),
                            f.header.flags, f.payload);
}

}  // namespace

absl::StatusOr<std::unique_ptr<HostSessionRelay>> HostSessionRelay::Start(ttrpc::Server* server,
                                                                          UniqueFd stream,
                                                                          std::string tag) {
  int flags = ::fcntl(stream.get(), F_GETFL);
  if (flags < 0 || ::fcntl(stream.get(), F_SETFL, flags | O_NONBLOCK) != 0 ||
      ::fcntl(stream.get(), F_SETFD, FD_CLOEXEC) != 0) {
    return ErrnoStatus(errno, "fcntl", tag);
  }
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return ErrnoStatus(errno, "pipe2", tag);
  std::unique_ptr<HostSessionRelay> r(new HostSessionRelay(
      server, std::move(stream), std::move(tag), UniqueFd(p[0]), UniqueFd(p[1])));
  RETURN_IF_ERROR(r->NewSession());
  r->thread_ = std::thread([raw = r.get()] { raw->Loop(); });
  return r;
}

HostSessionRelay::HostSessionRelay(ttrpc::Server* server, UniqueFd stream, std::string tag,
                                   UniqueFd wake_read, UniqueFd wake_write)
    : server_(server),
      stream_(std::move(stream)),
      tag_(std::move(tag)),
      wake_read_(std::move(wake_read)),
      wake_write_(std::move(wake_write)) {}

HostSessionRelay::~HostSessionRelay() { Stop(); }

void HostSessionRelay::Stop() {
  if (wake_write_) {
    char c = 0;
    (void)!::write(wake_write_.get(), &c, 1);
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status HostSessionRelay::NewSession() {
  inner_.Reset();  // the server sees EOF: the old session's calls are cancelled
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return ErrnoStatus(errno, "socketpair", tag_);
  }
  UniqueFd mine(sv[0]), theirs(sv[1]);
  int flags = ::fcntl(mine.get(), F_GETFL);
  if (flags < 0 || ::fcntl(mine.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoStatus(errno, "fcntl", tag_);
  }
  uint64_t n = ++sessions_;
  ttrpc::ServeConnectionOptions o;
  o.tag = tag_;
  o.on_closed = [tag = tag_, n](const absl::Status& why) {
    spdlog::info("op=host-session tag={} session={} closed=\"{}\"", tag, n, why.message());
  };
  RETURN_IF_ERROR(server_->ServeConnection(std::move(theirs), std::move(o)));
  inner_ = std::move(mine);
  if (n > 1) spdlog::info("op=host-session tag={} session={} note=\"a new host client\"", tag_, n);
  return absl::OkStatus();
}

void HostSessionRelay::Loop() {
  FrameDecoder from_host;
  std::optional<FrameDecoder> from_agent(std::in_place);  // per session
  std::string to_agent;                                   // whole frames for the current session
  size_t agent_off = 0;
  std::deque<std::string> to_host;  // whole frames; the front may be partly written
  size_t host_off = 0;
  uint32_t last_id = 0;  // highest Request stream id of this host session
  std::string why;       // set when the relay ends
  while (true) {
    if (agent_off == to_agent.size()) {
      to_agent.clear();
      agent_off = 0;
    }
    pollfd p[3] = {{stream_.get(), 0, 0}, {inner_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
    if (to_agent.size() - agent_off < kMaxPending) p[0].events |= POLLIN;
    if (!to_host.empty()) p[0].events |= POLLOUT;
    if (agent_off < to_agent.size()) p[1].events |= POLLOUT;
    if (::poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      why = absl::StrFormat("poll: errno %d", errno);
      break;
    }
    if (p[2].revents != 0) {
      why = "stopped";
      break;
    }
    // host -> agent, frame by frame: a Request whose id does not increase is a new client.
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      bool closed = ReadInto(stream_.get(), from_host) == Io::kClosed;
      while (from_host.HasFrame()) {
        DecodedFrame f = from_host.Next();
        bool request = f.header.type == static_cast<uint8_t>(MessageType::kRequest);
        if (request && last_id != 0 && f.header.stream_id <= last_id) {
          if (absl::Status st = NewSession(); !st.ok()) {
            why = std::string(st.message());
            closed = true;
            break;
          }
          to_agent.clear();
          agent_off = 0;
          from_agent.emplace();
          // Responses for the old client would reach the new one under reused ids: drop
          // them, except the rest of a frame already partly on the wire.
          if (host_off > 0)
            to_host.resize(1);
          else
            to_host.clear();
          last_id = 0;
        }
        if (request) last_id = std::max(last_id, f.header.stream_id);
        if (f.oversized) {
          to_host.push_back(ttrpc::EncodeResponseFrame(
              f.header.stream_id, ttrpc::OversizedMessageStatus(f.header.length), ""));
          continue;
        }
        to_agent += Reencode(f);
      }
      if (from_host.failed()) {
        why = absl::StrFormat("host stream: %s", from_host.error());
        break;
      }
      if (closed) {
        if (why.empty()) why = "the host stream closed";
        break;
      }
    }
    if ((p[1].revents & POLLOUT) && WriteFrom(inner_.get(), to_agent, &agent_off) == Io::kClosed) {
      why = "the server closed the session";
      break;
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      bool closed = ReadInto(inner_.get(), *from_agent) == Io::kClosed;
      while (from_agent->HasFrame()) to_host.push_back(Reencode(from_agent->Next()));
      if (closed) {
        why = "the server closed the session";  // agent shutdown: the port closes too
        break;
      }
    }
    while (!to_host.empty()) {
      if (WriteFrom(stream_.get(), to_host.front(), &host_off) == Io::kClosed) {
        why = "the host stream closed";
        break;
      }
      if (host_off < to_host.front().size()) break;
      to_host.pop_front();
      host_off = 0;
    }
    if (!why.empty()) break;
  }
  // The agent's last answers (Shutdown's) go out before the port closes: up to a second.
  for (int waited = 0; !to_host.empty() && stream_ && waited < 20;) {
    if (WriteFrom(stream_.get(), to_host.front(), &host_off) == Io::kClosed) break;
    if (host_off == to_host.front().size()) {
      to_host.pop_front();
      host_off = 0;
      continue;
    }
    pollfd out{stream_.get(), POLLOUT, 0};
    (void)::poll(&out, 1, 50);
    ++waited;
  }
  spdlog::info("op=host-session tag={} relay_end=\"{}\" sessions={}", tag_, why, sessions_.load());
  inner_.Reset();
  stream_.Reset();
  running_ = false;
}

}  // namespace kuasar::guest
