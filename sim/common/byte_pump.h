// BytePump relays bytes both ways between two connected unix stream sockets until either
// side ends, like a VMM's device model moving a vsock or virtio-serial stream between the
// host and the guest. Runs on the sockets' io_context thread only; Close and SetPaused
// must be called from that thread too.
#pragma once

#include <array>
#include <boost/asio/local/stream_protocol.hpp>
#include <functional>
#include <memory>

namespace kuasar::sim {

using UnixSocket = boost::asio::local::stream_protocol::socket;

class BytePump : public std::enable_shared_from_this<BytePump> {
 public:
  // When either side ends both are closed and on_done runs (once).
  static std::shared_ptr<BytePump> Start(std::shared_ptr<UnixSocket> a,
                                         std::shared_ptr<UnixSocket> b,
                                         std::function<void()> on_done);
  void Close();
  // A paused pump reads nothing (a paused VM moves no bytes); bytes already read still go.
  void SetPaused(bool paused);
  bool closed() const { return closed_; }

 private:
  struct Direction {
    UnixSocket* from = nullptr;
    UnixSocket* to = nullptr;
    std::array<char, 64 * 1024> buf;
    bool busy = false;  // a read or write is in flight
  };
  BytePump(std::shared_ptr<UnixSocket> a, std::shared_ptr<UnixSocket> b,
           std::function<void()> on_done);
  void Pump(Direction& d);

  std::shared_ptr<UnixSocket> a_, b_;
  std::function<void()> on_done_;
  Direction ab_, ba_;
  bool paused_ = false;
  bool closed_ = false;
};

}  // namespace kuasar::sim
