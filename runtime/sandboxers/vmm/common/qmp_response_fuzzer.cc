// libFuzzer target: the bytes a VMM sends on its QMP socket (QEMU, StratoVirt), through the
// client the drivers use and the readers they interpret replies and events with. The input
// is the whole server side of a session: greeting, capabilities reply, then replies and
// events in any order, garbage and truncation included. A peer thread writes it on a
// socketpair and then closes, so every wait ends at EOF rather than at a timeout.
// An exception escaping anywhere (an event callback runs on the io thread) is a crash.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>

#include "runtime/base/unique_fd.h"
#include "runtime/sandboxers/vmm/common/qmp_client.h"
#include "runtime/sandboxers/vmm/common/qmp_replies.h"

namespace {

using kuasar::UniqueFd;
using namespace kuasar::vmm;

void Serve(int fd, std::string input) {
  std::string_view left = input;
  while (!left.empty()) {
    ssize_t n = ::send(fd, left.data(), left.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    left.remove_prefix(static_cast<size_t>(n));
  }
  ::shutdown(fd, SHUT_WR);
  char sink[4096];
  while (::read(fd, sink, sizeof(sink)) > 0) {
  }
  ::close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1u << 16)) return 0;
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
  std::thread peer(Serve, sv[1], std::string(reinterpret_cast<const char*>(data), size));

  QmpClientOptions options;
  options.handshake_timeout = absl::Seconds(2);
  options.on_event = [](const QmpEvent& e) {
    if (!e.data.is_object()) std::abort();  // the client promises an object
    QmpEventEffect effect = InterpretQmpEvent(e, "agent.0");
    (void)effect;
    (void)absl::FormatTime(e.at);
  };
  auto client = QmpClient::FromFd(UniqueFd(sv[0]), std::move(options));
  if (client.ok()) {
    (void)(*client)->greeting().dump();
    // The calls the QEMU and StratoVirt drivers make and read the answers of.
    if (auto status = (*client)->Execute("query-status", nullptr, absl::Seconds(2)); status.ok()) {
      (void)QmpRunStatus(*status);
    }
    if (auto chardevs = (*client)->Execute("query-chardev", nullptr, absl::Seconds(2));
        chardevs.ok()) {
      (void)QmpChardevFrontendOpen(*chardevs, "agent");
    }
    (void)(*client)->Execute("device_add", {{"driver", "virtio-net-pci"}, {"id", "n0"}},
                             absl::Seconds(2));
    (*client)->Close();
  }
  client = absl::UnknownError("done");  // destroys the client (and its io thread) first
  peer.join();
  return 0;
}
