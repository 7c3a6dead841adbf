#include "runtime/guest/agent_channels.h"

#include <fcntl.h>
#include <linux/input.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"

namespace kuasar::guest {
namespace {

using boost::asio::posix::stream_descriptor;

// Shared shape of the vsock listener and the power button: one fd waited on by the io
// thread, closed under a lock so a handler never runs on a closed descriptor.
struct WatchedFd : std::enable_shared_from_this<WatchedFd> {
  WatchedFd(boost::asio::io_context& io, int fd, std::function<void(int)> on_ready)
      : sd(io, fd), on_ready(std::move(on_ready)) {}
  void Arm() {
    sd.async_wait(stream_descriptor::wait_read,
                  [self = shared_from_this()](const boost::system::error_code& ec) {
                    std::lock_guard<std::mutex> l(self->mu);
                    if (ec || self->closed) return;
                    self->on_ready(self->sd.native_handle());
                    self->Arm();
                  });
  }
  void Close() {
    std::lock_guard<std::mutex> l(mu);
    if (closed) return;
    closed = true;
    boost::system::error_code ignored;
    sd.close(ignored);
  }
  std::mutex mu;
  bool closed = false;
  stream_descriptor sd;
  std::function<void(int)> on_ready;
};

}  // namespace

struct VsockListener::State {
  std::shared_ptr<WatchedFd> fd;
};

absl::StatusOr<std::unique_ptr<VsockListener>> VsockListener::Start(boost::asio::io_context& io,
                                                                    ttrpc::Server* server,
                                                                    uint32_t port) {
  UniqueFd s(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s) return ErrnoStatus(errno, "socket AF_VSOCK (no vsock in this kernel?)");
  sockaddr_vm addr{};
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = VMADDR_CID_ANY;
  addr.svm_port = port;
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, "bind", absl::StrFormat("vsock port %d", port));
  }
  if (::listen(s.get(), 64) != 0) {
    return ErrnoStatus(errno, "listen", absl::StrFormat("vsock port %d", port));
  }
  auto st = std::make_shared<State>();
  st->fd = std::make_shared<WatchedFd>(io, s.Release(), [server, port](int fd) {
    while (true) {
      UniqueFd conn(::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) {
        if (errno != EAGAIN && errno != EINTR) {
          spdlog::warn("op=vsock-accept port={} errno={}", port, errno);
        }
        return;
      }
      if (absl::Status r = server->ServeConnection(std::move(conn)); !r.ok()) {
        spdlog::warn("op=vsock-serve port={} error=\"{}\"", port, r.message());
      }
    }
  });
  st->fd->Arm();
  spdlog::info("op=listen vsock_port={}", port);
  return std::unique_ptr<VsockListener>(new VsockListener(std::move(st)));
}

VsockListener::~VsockListener() { Close(); }
void VsockListener::Close() { state_->fd->Close(); }

absl::StatusOr<std::unique_ptr<HostSessionRelay>> ServeInheritedFd(ttrpc::Server* server, int fd) {
  return HostSessionRelay::Start(server, UniqueFd(fd), absl::StrFormat("serve-fd:%d", fd));
}

absl::StatusOr<std::string> FindVirtioPort(std::string_view name, const std::string& sysfs,
                                           const std::string& dev) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(sysfs, ec)) {
    auto n = ReadSmallFile(e.path().string() + "/name", 4096);
    if (n.ok() &&
        absl::StripTrailingAsciiWhitespace(*n) == absl::string_view(name.data(), name.size())) {
      return dev + "/" + e.path().filename().string();
    }
  }
  return absl::NotFoundError(absl::StrFormat("no virtio-serial port named %s in %s", name, sysfs));
}

SerialPortServer::SerialPortServer(ttrpc::Server* server, std::string name)
    : server_(server), name_(std::move(name)), thread_([this] { Loop(); }) {}

SerialPortServer::~SerialPortServer() { Stop(); }

void SerialPortServer::Stop() {
  {
    std::lock_guard<std::mutex> l(shared_->mu);
    shared_->stopping = true;
  }
  shared_->cv.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool SerialPortServer::Sleep(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> l(shared_->mu);
  shared_->cv.wait_for(l, d, [this] { return shared_->stopping; });
  return !shared_->stopping;
}

void SerialPortServer::Loop() {
  bool logged_missing = false;
  while (true) {
    auto path = FindVirtioPort(name_);
    if (!path.ok()) {
      if (!logged_missing)
        spdlog::warn("op=serial port={} error=\"{}\"", name_, path.status().message());
      logged_missing = true;
      if (!Sleep(std::chrono::milliseconds(100))) return;
      continue;
    }
    UniqueFd fd(::open(path->c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK));
    if (!fd) {
      // EBUSY: the previous session's fd is still being closed.
      if (!Sleep(std::chrono::milliseconds(50))) return;
      continue;
    }
    // A port polls POLLHUP until the host opens its end; it gives no event when that
    // happens, so look again every 50 ms.
    while (true) {
      pollfd p{fd.get(), POLLIN, 0};
      if (::poll(&p, 1, 0) >= 0 && !(p.revents & POLLHUP)) break;
      if (!Sleep(std::chrono::milliseconds(50))) return;
    }
    {
      std::lock_guard<std::mutex> l(shared_->mu);
      if (shared_->stopping) return;
      shared_->serving = true;
    }
    ++sessions_;
    ttrpc::ServeConnectionOptions o;
    o.tag = "serial:" + name_;
    o.on_closed = [shared = shared_, name = name_](const absl::Status& why) {
      spdlog::info("op=serial port={} closed=\"{}\"", name, why.message());
      std::lock_guard<std::mutex> l(shared->mu);
      shared->serving = false;
      shared->cv.notify_all();
    };
    spdlog::info("op=serial port={} path={} session={}", name_, *path, sessions_.load());
    if (absl::Status st = server_->ServeConnection(std::move(fd), std::move(o)); !st.ok()) {
      spdlog::warn("op=serial port={} error=\"{}\"", name_, st.message());
      std::lock_guard<std::mutex> l(shared_->mu);
      shared_->serving = false;
    }
    std::unique_lock<std::mutex> l(shared_->mu);
    shared_->cv.wait(l, [this] { return shared_->stopping || !shared_->serving; });
    if (shared_->stopping) return;
  }
}

struct PowerButton::State {
  std::shared_ptr<WatchedFd> fd;
};

absl::StatusOr<std::unique_ptr<PowerButton>> PowerButton::Watch(boost::asio::io_context& io,
                                                                std::function<void()> on_press) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/sys/class/input", ec)) {
    std::string node = e.path().filename().string();
    if (!node.starts_with("event")) continue;
    auto name = ReadSmallFile(e.path().string() + "/device/name", 4096);
    if (!name.ok() || absl::StripTrailingAsciiWhitespace(*name) != "Power Button") continue;
    std::string dev = "/dev/input/" + node;
    UniqueFd fd(::open(dev.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd) return ErrnoStatus(errno, "open", dev);
    auto st = std::make_shared<State>();
    st->fd = std::make_shared<WatchedFd>(io, fd.Release(), [on_press](int f) {
      input_event ev[8];
      ssize_t n;
      while ((n = ::read(f, ev, sizeof(ev))) > 0) {
        for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(ev[0]); ++i) {
          if (ev[i].type == EV_KEY && ev[i].code == KEY_POWER && ev[i].value == 1) on_press();
        }
      }
    });
    st->fd->Arm();
    spdlog::info("op=power-button device={}", dev);
    return std::unique_ptr<PowerButton>(new PowerButton(std::move(st)));
  }
  return absl::NotFoundError("no ACPI power button input device");
}

PowerButton::~PowerButton() { state_->fd->Close(); }

}  // namespace kuasar::guest
