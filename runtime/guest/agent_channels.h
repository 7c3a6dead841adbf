// The byte streams the agent serves its ttrpc server on, besides unix sockets (which
// ttrpc::Server listens on itself): AF_VSOCK ports, an inherited connected fd, and
// virtio-serial ports, which the host may disconnect and reconnect at will (a port reads
// EOF / polls POLLHUP while no host end is open): the agent reopens and serves again,
// forever. Also the ACPI power button of a VM (QEMU's system_powerdown). Thread-safe;
// close everything before the io_context stops.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/statusor.h"
#include "runtime/base/unique_fd.h"
#include "runtime/guest/host_session_relay.h"
#include "runtime/ttrpc/server.h"

namespace kuasar::guest {

// Accepts on vsock:PORT (any CID) and serves each connection.
class VsockListener {
 public:
  static absl::StatusOr<std::unique_ptr<VsockListener>> Start(boost::asio::io_context& io,
                                                              ttrpc::Server* server, uint32_t port);
  ~VsockListener();
  void Close();

  struct State;

 private:
  explicit VsockListener(std::shared_ptr<State> s) : state_(std::move(s)) {}
  std::shared_ptr<State> state_;
};

// Serves an inherited, already-connected stream (--serve-fd) until it closes, through a
// HostSessionRelay: the fake VMM's virtio-serial stream outlives host connections, so a
// host client that starts over (a restarted sandboxer) gets a fresh ttrpc connection.
absl::StatusOr<std::unique_ptr<HostSessionRelay>> ServeInheritedFd(ttrpc::Server* server, int fd);

// The /dev node of the virtio-serial port called `name` (/sys/class/virtio-ports/*/name).
absl::StatusOr<std::string> FindVirtioPort(std::string_view name,
                                           const std::string& sysfs = "/sys/class/virtio-ports",
                                           const std::string& dev = "/dev");

// One thread per port: find it, open it, wait for the host end, serve until the
// connection closes, reopen.
class SerialPortServer {
 public:
  SerialPortServer(ttrpc::Server* server, std::string name);
  ~SerialPortServer();  // Stop()
  void Stop();
  uint64_t sessions() const { return sessions_.load(); }

 private:
  // Shared with the connection's on_closed callback, which may outlive this object.
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool stopping = false;
    bool serving = false;
  };
  void Loop();
  bool Sleep(std::chrono::milliseconds d);  // false once stopping

  ttrpc::Server* server_;
  const std::string name_;
  const std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
  std::atomic<uint64_t> sessions_{0};
  std::thread thread_;
};

// Calls `on_press` when the ACPI power button is pressed (an input device named "Power
// Button"); NOT_FOUND when there is none.
class PowerButton {
 public:
  static absl::StatusOr<std::unique_ptr<PowerButton>> Watch(boost::asio::io_context& io,
                                                            std::function<void()> on_press);
  ~PowerButton();

  struct State;

 private:
  explicit PowerButton(std::shared_ptr<State> s) : state_(std::move(s)) {}
  std::shared_ptr<State> state_;
};

}  // namespace kuasar::guest
