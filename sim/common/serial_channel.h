// A virtio-serial port backed by a chardev socket server (QEMU `-chardev socket,server=on`
// + `-device virtserialport`), as the agent channel of QEMU and StratoVirt here (no
// vhost-vsock). The host side is the unix socket: one connection at a time, as QEMU
// serves it; later connections wait in the backlog until the current one leaves. The
// guest side is one byte stream for the life of the guest: the agent gets one end of a
// socketpair (vmm-task --serve-fd). Host bytes wait (the host's writes block) while no
// guest is attached or the VM is paused; a host that hangs up meanwhile is noticed (as
// QEMU's chardev watches for HUP) and its unread bytes are discarded, so a client that
// retries while the guest boots leaves nothing stale for the agent. Guest bytes written
// while no host is connected are dropped. One io_context thread.
#pragma once

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
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

  // A (re)booted guest: a fresh socketpair; returns the end for the agent.
  absl::StatusOr<UniqueFd> AttachGuest();
  // The guest side goes away (guest down, or the "drop channel" fault); the host
  // connection is closed too.
  void DetachGuest();
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
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace kuasar::sim
