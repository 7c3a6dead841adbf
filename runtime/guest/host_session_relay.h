// Serves ttrpc on a byte stream whose host end can be replaced without the guest being
// told: the fake VMM's virtio-serial socketpair (--serve-fd) is one stream for the life of
// the guest while the host's chardev connection comes and goes (a restarted sandboxer
// dials again). A new ttrpc client starts its stream ids over at 1, which one ttrpc
// connection must refuse (PROTOCOL.md: client stream ids only increase). So each host
// session gets its own server connection: a Request whose stream id does not increase
// starts a new one, and the old one is closed (its calls cancelled, its unsent responses
// dropped). One thread per relay; Stop from any other thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "runtime/base/unique_fd.h"
#include "runtime/ttrpc/server.h"

namespace kuasar::guest {

class HostSessionRelay {
 public:
  // Relays `stream` (a connected byte stream, made non-blocking here) to `server`, which
  // must outlive the relay. `tag` names the connections (CallContext::connection_tag).
  static absl::StatusOr<std::unique_ptr<HostSessionRelay>> Start(ttrpc::Server* server,
                                                                 UniqueFd stream, std::string tag);
  ~HostSessionRelay();  // Stop()
  // Ends the relay and closes the stream and the current session. Idempotent.
  void Stop();
  // Host sessions seen so far (1 once the first is served).
  uint64_t sessions() const { return sessions_.load(); }
  // False once the stream or the server's side closed (or Stop).
  bool running() const { return running_.load(); }

 private:
  HostSessionRelay(ttrpc::Server* server, UniqueFd stream, std::string tag, UniqueFd wake_read,
                   UniqueFd wake_write);
  // Closes the current session (if any) and hands the server a fresh one.
  absl::Status NewSession();
  void Loop();

  ttrpc::Server* const server_;
  UniqueFd stream_;
  const std::string tag_;
  UniqueFd wake_read_, wake_write_;
  UniqueFd inner_;  // our end of the current session's socketpair
  std::atomic<uint64_t> sessions_{0};
  std::atomic<bool> running_{true};
  std::thread thread_;
};

}  // namespace kuasar::guest
