// UnixListener: one listening unix socket of a ttrpc Server. Binds, sets the file mode
// before listen() so no client can connect through looser permissions, accepts with
// CLOEXEC, and removes its socket file on Close (only if the file is still ours).
// Internal to runtime/ttrpc. Close may be called from any thread.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "absl/status/statusor.h"
#include "runtime/base/unique_fd.h"

namespace kuasar::ttrpc {

class UnixListener : public std::enable_shared_from_this<UnixListener> {
 public:
  using AcceptFn = std::function<void(UniqueFd)>;

  // Clears a stale socket file first (runtime/base PrepareSocketPath).
  static absl::StatusOr<std::shared_ptr<UnixListener>> Create(boost::asio::io_context& io,
                                                              const std::string& path,
                                                              unsigned mode, AcceptFn on_accept);
  UnixListener(boost::asio::io_context& io, std::string path, dev_t dev, ino_t ino,
               AcceptFn on_accept);

  void Start();
  // Stops accepting and unlinks the socket file.
  void Close();
  const std::string& path() const { return path_; }

 private:
  void Arm();
  void OnReadable(const boost::system::error_code& ec);

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::posix::stream_descriptor socket_;
  boost::asio::steady_timer backoff_;
  const std::string path_;
  const dev_t dev_;
  const ino_t ino_;
  AcceptFn on_accept_;
  bool closed_ = false;
};

}  // namespace kuasar::ttrpc
