// QmpServer: QMP over a unix socket server (`-qmp unix:PATH,server=on,wait=off`). Every
// connection gets the greeting and its own QmpSession; events go to every ready session.
// Reads use recvmsg so file descriptors sent with SCM_RIGHTS reach getfd. One io_context
// thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "sim/common/qmp_session.h"

namespace kuasar::sim {

class QmpServer {
 public:
  // A leftover socket file is unlinked first only if `replace_existing` (QEMU does).
  static absl::StatusOr<std::unique_ptr<QmpServer>> Listen(boost::asio::io_context& io,
                                                           const std::string& path,
                                                           QmpDialect dialect, OJson greeting,
                                                           QmpSession::Dispatch dispatch,
                                                           bool replace_existing);
  ~QmpServer();  // closes every connection and unlinks the socket

  void Broadcast(const OJson& event);
  // Runs once, when the first client connects (a `wait=on` server holds the VM until then).
  void OnFirstClient(std::function<void()> fn) { on_first_ = std::move(fn); }
  size_t clients() const { return conns_.size(); }
  const std::string& path() const { return path_; }

  struct Conn;

 private:
  QmpServer(boost::asio::io_context& io, std::string path, QmpDialect dialect, OJson greeting,
            QmpSession::Dispatch dispatch);
  void Accept();

  std::string path_;
  QmpDialect dialect_;
  OJson greeting_;
  QmpSession::Dispatch dispatch_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::set<std::shared_ptr<Conn>> conns_;
  std::function<void()> on_first_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace kuasar::sim
