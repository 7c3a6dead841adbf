// A virtio-serial port backed by a chardev socket server (QEMU `-chardev socket,server=on`
// + `-device virtserialport`), as the agent channel of QEMU and StratoVirt here (no
// vhost-vsock). The host side is the unix socket: one connection at a time, as QEMU
// serves it; later connections wait in the backlog until the current one leaves. The
// host connection is independent of the guest: it stays open while the guest boots,
// reboots or closes its port (QEMU's chardev only stops reading it: the host's bytes
// wait). The guest side is one byte stream per guest session: the agent gets one end of
// a socketpair (vmm-task --serve-fd). Host bytes wait while no guest is attached or the
// VM is paused; a host that hangs up meanwhile is noticed (as QEMU's chardev watches for
// HUP) and its unread bytes are discarded, so a client that retries while the guest
// boots leaves nothing stale for the agent. Guest bytes wait while no host is connected
// (a real guest's port write blocks then). One io_context thread.
#pragma once

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/base/unique_fd.h"
#include "sim/common/byte_pump.h"

namespace kuasar::sim {

class SerialChannel {
 public:
  // Binds and listens on `path`, unlinking an existing file first (QEMU does).
  static absl::StatusOr<std::unique_ptr<SerialChannel>> Listen(boost::asio::io_context& io,
                                                               const std::string& path);
  ~SerialChannel();  // closes everything and unlinks the socket

  // A (re)booted guest opens the port: a fresh socketpair; returns the end for the agent.
  absl::StatusOr<UniqueFd> AttachGuest();
  // The guest side goes away (guest down or reset); the host connection stays.
  void DetachGuest();
  // The "drop channel" fault: the guest side and the host connection both go.
  void DropBoth();
  // Runs with true when a guest opens the port and false when it closes it (detached, or
  // the agent closed its end): QEMU's VSERPORT_CHANGE. Not run from the destructor.
  void OnGuestOpenChanged(std::function<void(bool open)> fn) { on_open_ = std::move(fn); }
  void SetPaused(bool paused);
  bool host_connected() const { return host_ != nullptr; }
  bool guest_attached() const { return guest_ != nullptr; }
  const std::string& path() const { return path_; }

 private:
  using Buffer = std::array<char, 16 * 1024>;
  SerialChannel(boost::asio::io_context& io, std::string path);
  void Accept();
  void DropHost();
  void KickHost();
  void KickGuest();
  // Closes the guest side; true if one was attached.
  bool CloseGuest();
  // While the host's bytes are not being read: drop it if it hung up.
  bool DropHostIfHungUp();
  void WatchHostHangUp();

  boost::asio::io_context& io_;
  std::string path_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::shared_ptr<UnixSocket> host_, guest_;
  boost::asio::steady_timer hup_timer_;
  bool hup_watching_ = false;
  bool accepting_ = false;
  bool host_busy_ = false, guest_busy_ = false;
  bool paused_ = false;
  std::function<void(bool)> on_open_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace kuasar::sim
