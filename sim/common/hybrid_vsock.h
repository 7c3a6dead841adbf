// Hybrid vsock, host side, as Firecracker and Cloud Hypervisor implement it over a unix
// socket (Firecracker docs/vsock.md): a host process connects to the device's socket and
// writes "CONNECT <port>\n"; if a guest process listens on that vsock port the VMM answers
// "OK <host port>\n" (host ports count up from 2^30) and relays bytes both ways; otherwise
// it closes the connection. Here a guest port is a unix socket in the VM's run dir that
// the guest agent listens on. One io_context thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "sim/common/byte_pump.h"

namespace kuasar::sim {

class HybridVsock {
 public:
  using PortPath = std::function<std::string(uint32_t port)>;
  // Binds and listens on `socket_path` (mode 0600). A leftover socket file is removed
  // only if `replace_existing` (Cloud Hypervisor does; Firecracker fails with EADDRINUSE).
  static absl::StatusOr<std::unique_ptr<HybridVsock>> Listen(boost::asio::io_context& io,
                                                             const std::string& socket_path,
                                                             PortPath port_path,
                                                             bool replace_existing);
  ~HybridVsock();  // closes everything and unlinks the socket

  // Closes every relayed connection (the "drop channel" fault).
  void DropAll();
  void SetPaused(bool paused);
  size_t connections() const { return pumps_.size(); }
  const std::string& path() const { return path_; }

 private:
  HybridVsock(boost::asio::io_context& io, std::string path, PortPath port_path);
  void Accept();
  void Handshake(std::shared_ptr<UnixSocket> host);

  boost::asio::io_context& io_;
  std::string path_;
  PortPath port_path_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::set<std::shared_ptr<BytePump>> pumps_;
  std::set<std::shared_ptr<UnixSocket>> pending_;  // mid-handshake
  uint32_t next_host_port_ = 1u << 30;
  bool paused_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Parses "CONNECT <port>" (the line without its newline); nullopt if malformed.
std::optional<uint32_t> ParseConnectLine(std::string_view line);

}  // namespace kuasar::sim
