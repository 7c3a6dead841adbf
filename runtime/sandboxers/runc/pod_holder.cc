#include "runtime/sandboxers/runc/pod_holder.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include <boost/asio/post.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/child_process.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/unique_fd.h"

namespace kuasar {
namespace {

constexpr uint32_t kMsgSpawn = 1;
constexpr uint32_t kMsgSpawned = 2;
constexpr uint32_t kMsgExit = 3;
constexpr uint32_t kMsgTaskConn = 4;

// Reads one line from `fd` within `timeout`.
absl::StatusOr<std::string> ReadLine(int fd, absl::Duration timeout) {
  std::string line;
  absl::Time deadline = absl::Now() + timeout;
  char c;
  while (true) {
    int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (left <= 0) return absl::DeadlineExceededError("holder did not report READY in time");
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = ::read(fd, &c, 1);
    if (n == 0) return absl::UnavailableError("holder exited before READY");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return ErrnoStatus(errno, "read", "holder ready pipe");
    }
    if (c == '\n') return line;
    line.push_back(c);
    if (line.size() > 128) return absl::DataLossError("holder READY line too long");
  }
}

std::string LogTail(const std::string& path) {
  auto text = ReadSmallFile(path, 1 << 20);
  if (!text.ok() || text->empty()) return "(no holder log)";
  std::string t = *text;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  return t.size() > 512 ? t.substr(t.size() - 512) : t;
}

}  // namespace

std::string HolderSocketPath(const std::string& dir) { return dir + "/holder.sock"; }
std::string HolderJournalPath(const std::string& dir) { return dir + "/exits.journal"; }
std::string HolderPidFile(const std::string& dir) { return dir + "/holder.pid"; }

absl::StatusOr<ProcessIdentity> FindHolderByPidFile(const std::string& dir) {
  ASSIGN_OR_RETURN(std::string text, ReadSmallFile(HolderPidFile(dir), 64));
  int pid = std::atoi(text.c_str());
  if (pid <= 0) return absl::DataLossError(absl::StrFormat("bad %s", HolderPidFile(dir)));
  ASSIGN_OR_RETURN(ProcessIdentity id, IdentifyProcess(pid));
  // Only our own holder: its command line names this sandbox's journal.
  auto cmdline = ReadSmallFile(absl::StrFormat("/proc/%d/cmdline", pid), 1 << 16);
  if (!cmdline.ok() || cmdline->find(HolderJournalPath(dir)) == std::string::npos) {
    return absl::NotFoundError(absl::StrFormat("pid %d is not the holder of %s", pid, dir));
  }
  return id;
}

absl::StatusOr<HolderInfo> StartHolder(const HolderOptions& o) {
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  UniqueFd ready_r(ready[0]), ready_w(ready[1]);
  std::string log_path = o.dir + "/holder.log";
  UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!log) return ErrnoStatus(errno, "open", log_path);

  std::vector<std::string> argv = {o.holder_binary, "--pid-file", HolderPidFile(o.dir), "--socket",
                                   HolderSocketPath(o.socket_dir.empty() ? o.dir : o.socket_dir),
                                   "--journal", HolderJournalPath(o.dir), "--ready-fd", "3"};
  if (!o.netns_path.empty()) argv.insert(argv.end(), {"--netns", o.netns_path});
  if (o.new_ipc) argv.push_back("--new-ipc");
  if (o.new_uts) {
    argv.push_back("--new-uts");
    if (!o.hostname.empty()) argv.insert(argv.end(), {"--hostname", o.hostname});
  }
  if (o.new_pid) argv.push_back("--new-pid");
  if (!o.task_socket.empty()) argv.insert(argv.end(), {"--task-socket", o.task_socket});
  for (const auto& [k, v] : o.sysctls) argv.insert(argv.end(), {"--sysctl", k + "=" + v});

  SpawnOptions spawn;
  spawn.stdout_fd = log.get();
  spawn.stderr_fd = log.get();
  spawn.inherit_fds = {{ready_w.get(), 3}};
  ASSIGN_OR_RETURN(ChildProcess first, ChildProcess::Spawn(argv, spawn));
  ready_w.Reset();
  // The first process exits right after the second fork (or on a setup error).
  absl::StatusOr<int> first_status = first.WaitFor(absl::ToChronoMilliseconds(o.timeout));
  if (!first_status.ok()) {
    return absl::DeadlineExceededError(
        absl::StrFormat("holder setup did not finish in %s: %s", absl::FormatDuration(o.timeout),
                        LogTail(log_path)));
  }
  if (*first_status != 0) {
    return absl::InternalError(absl::StrFormat("holder failed (exit %d): %s",
                                               ExitCodeFromWaitStatus(*first_status),
                                               LogTail(log_path)));
  }
  ASSIGN_OR_RETURN(std::string line, ReadLine(ready_r.get(), o.timeout));
  int holder_pid = 0, sandbox_pid = 0;
  if (std::sscanf(line.c_str(), "READY %d %d", &holder_pid, &sandbox_pid) != 2 ||
      holder_pid <= 0 || sandbox_pid <= 0) {
    return absl::DataLossError(absl::StrFormat("bad holder READY line \"%s\"", line));
  }
  HolderInfo info;
  absl::StatusOr<ProcessIdentity> h = IdentifyProcess(holder_pid);
  absl::StatusOr<ProcessIdentity> s = IdentifyProcess(sandbox_pid);
  if (!h.ok() || !s.ok()) {
    if (h.ok()) ::kill(holder_pid, SIGKILL);
    return absl::UnavailableError(
        absl::StrFormat("holder died right after READY: %s", LogTail(log_path)));
  }
  info.holder = *h;
  info.sandbox = *s;
  return info;
}

std::vector<JournaledExit> ReadHolderJournal(const std::string& dir) {
  std::vector<JournaledExit> out;
  std::ifstream in(HolderJournalPath(dir));
  long long pid, status, ns;
  while (in >> pid >> status >> ns) {
    out.push_back({static_cast<pid_t>(pid), static_cast<int>(status), absl::FromUnixNanos(ns)});
  }
  return out;
}

HolderConnection::HolderConnection(boost::asio::io_context& io, int fd, ExitRegistry* exits,
                                   std::function<void()> on_disconnect,
                                   TaskConnHandler on_task_conn)
    : socket_(io, fd),
      exits_(exits),
      on_disconnect_(std::move(on_disconnect)),
      on_task_conn_(std::move(on_task_conn)) {}

HolderConnection::~HolderConnection() { Close(); }

absl::StatusOr<std::shared_ptr<HolderConnection>> HolderConnection::Connect(
    boost::asio::io_context& io, const std::string& socket_path, ExitRegistry* exits,
    std::function<void()> on_disconnect, TaskConnHandler on_task_conn) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrFormat("holder socket path too long: %s", socket_path));
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, "connect", socket_path);
  }
  std::shared_ptr<HolderConnection> c(
      new HolderConnection(io, fd.Release(), exits, std::move(on_disconnect),
                           std::move(on_task_conn)));
  c->ReadLoop();
  return c;
}

void HolderConnection::ReadLoop() {
  socket_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       if (ec) return;  // closed
                       self->OnReadable();
                     });
}

void HolderConnection::OnReadable() {
  while (true) {
    uint32_t w[4];
    char cbuf[CMSG_SPACE(sizeof(int))];
    iovec iov{w, sizeof(w)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof(cbuf);
    ssize_t n = ::recvmsg(socket_.native_handle(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    UniqueFd passed;
    for (cmsghdr* c = n > 0 ? CMSG_FIRSTHDR(&msg) : nullptr; c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c), sizeof(fd));
        passed.Reset(fd);
      }
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      FailAll();
      return;
    }
    if (n != sizeof(w)) continue;  // not a message we know; the holder sends fixed-size ones
    if (w[0] == kMsgSpawned) {
      std::lock_guard<std::mutex> l(mu_);
      auto it = pending_.find(w[1]);
      if (it != pending_.end()) {
        it->second->done = true;
        it->second->result = static_cast<int32_t>(w[2]);
        cv_.notify_all();
      }
    } else if (w[0] == kMsgExit) {
      exits_->Deliver(static_cast<pid_t>(w[1]), static_cast<int>(w[2]), absl::Now());
    } else if (w[0] == kMsgTaskConn && passed && on_task_conn_) {
      on_task_conn_(w[1], std::move(passed));
    }
  }
  ReadLoop();
}

void HolderConnection::FailAll() {
  std::function<void()> cb;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (closed_) return;
    closed_ = true;
    cv_.notify_all();
    cb = std::move(on_disconnect_);
  }
  boost::system::error_code ec;
  socket_.close(ec);
  if (cb) cb();
}

void HolderConnection::Close() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (closed_) return;
    closed_ = true;
    on_disconnect_ = nullptr;  // a deliberate close is not a holder death
    cv_.notify_all();
  }
  // The socket is closed on its io thread to avoid racing a pending async_wait.
  boost::asio::post(socket_.get_executor(), [self = shared_from_this()] {
    boost::system::error_code ec;
    self->socket_.close(ec);
  });
}

absl::StatusOr<pid_t> HolderConnection::Spawn(const std::vector<std::string>& argv,
                                              const std::vector<std::string>& env,
                                              std::array<int, 3> stdio, absl::Duration timeout) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') {
    return absl::InvalidArgumentError("holder spawn needs an absolute argv[0]");
  }
  auto pending = std::make_shared<Pending>();
  uint32_t req;
  std::string packet;
  uint32_t mask = 0;
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) {
    if (stdio[i] >= 0) {
      mask |= 1u << i;
      fds.push_back(stdio[i]);
    }
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    if (closed_) return absl::UnavailableError("holder connection is closed");
    req = next_req_++;
    pending_[req] = pending;
  }
  uint32_t hdr[5] = {kMsgSpawn, req, static_cast<uint32_t>(argv.size()),
                     static_cast<uint32_t>(env.size()), mask};
  packet.append(reinterpret_cast<const char*>(hdr), sizeof(hdr));
  for (const auto* list : {&argv, &env}) {
    for (const std::string& s : *list) {
      packet.append(s);
      packet.push_back('\0');
    }
  }
  if (packet.size() > 65536) return absl::InvalidArgumentError("holder spawn request too large");

  iovec iov{packet.data(), packet.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> cbuf(CMSG_SPACE(sizeof(int) * 3));
  if (!fds.empty()) {
    msg.msg_control = cbuf.data();
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  auto unregister = [&] {
    std::lock_guard<std::mutex> l(mu_);
    pending_.erase(req);
  };
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    ssize_t n;
    {
      std::lock_guard<std::mutex> l(send_mu_);
      n = ::sendmsg(socket_.native_handle(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    if (n >= 0) break;
    if (errno != EAGAIN && errno != EINTR) {
      unregister();
      return ErrnoStatus(errno, "send to holder");
    }
    if (absl::Now() > deadline) {
      unregister();
      return absl::DeadlineExceededError("holder socket stayed full");
    }
    pollfd p{socket_.native_handle(), POLLOUT, 0};
    ::poll(&p, 1, 10);
  }
  std::unique_lock<std::mutex> l(mu_);
  bool ok = cv_.wait_until(l, absl::ToChronoTime(deadline),
                           [&] { return pending->done || closed_; });
  pending_.erase(req);
  if (!pending->done) {
    return closed_ ? absl::UnavailableError("holder went away during spawn")
                   : absl::DeadlineExceededError("holder did not answer a spawn in time");
  }
  (void)ok;
  if (pending->result < 0) {
    return ErrnoStatus(-pending->result, "holder exec", argv[0]);
  }
  return static_cast<pid_t>(pending->result);
}

}  // namespace kuasar
