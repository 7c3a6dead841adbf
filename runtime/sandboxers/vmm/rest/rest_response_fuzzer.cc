// libFuzzer target: the bytes Cloud Hypervisor or Firecracker answer on their API socket,
// through the RestClient the drivers use (Boost.Beast's response parser, the error-body
// readers, HttpErrorToStatus) and the readers the drivers interpret answers with
// (ClhVmState, FcInstanceState). The first byte picks the call; the rest is the whole
// response, sent by a peer thread that then closes, so every wait ends at EOF.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "runtime/base/unique_fd.h"
#include "runtime/sandboxers/vmm/clh/clh_requests.h"
#include "runtime/sandboxers/vmm/firecracker/fc_requests.h"
#include "runtime/sandboxers/vmm/rest/rest_client.h"

namespace {

using kuasar::UniqueFd;
using namespace kuasar::vmm;

const std::string& SocketPath() {
  static const std::string path = [] {
    char dir[] = "/tmp/kuasar-rest-fuzz.XXXXXX";
    if (::mkdtemp(dir) == nullptr) std::abort();
    return std::string(dir) + "/api.sock";
  }();
  return path;
}

UniqueFd Listen() {
  ::unlink(SocketPath().c_str());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, SocketPath().c_str(), sizeof(addr.sun_path) - 1);
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd.get(), 1) != 0) {
    std::abort();
  }
  return fd;
}

// One connection: read the request's head, answer `response` verbatim, close.
void Serve(int listener, std::string response) {
  UniqueFd conn(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn) return;
  std::string request;
  char buf[4096];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < (1u << 16)) {
    ssize_t n = ::read(conn.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    request.append(buf, static_cast<size_t>(n));
  }
  std::string_view left = response;
  while (!left.empty()) {
    ssize_t n = ::send(conn.get(), left.data(), left.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    left.remove_prefix(static_cast<size_t>(n));
  }
  ::shutdown(conn.get(), SHUT_WR);
  while (::read(conn.get(), buf, sizeof(buf)) > 0) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > (1u << 16)) return 0;
  const uint8_t which = data[0] % 3;
  std::string response(reinterpret_cast<const char*>(data + 1), size - 1);

  // The readers on their own, as the drivers call them on error bodies.
  (void)ErrorMessageFromBody(response);
  (void)HttpErrorToStatus("PUT", "/api/v1/vm.boot", 400 + data[0], response);

  UniqueFd listener = Listen();
  std::thread peer(Serve, listener.get(), std::move(response));
  RestClient client(SocketPath(), absl::Seconds(2));
  switch (which) {
    case 0:
      if (auto info = client.Call("GET", "/api/v1/vm.info"); info.ok()) (void)ClhVmState(*info);
      break;
    case 1:
      if (auto info = client.Call("GET", "/"); info.ok()) (void)FcInstanceState(*info);
      break;
    default:
      (void)client.Call("PUT", "/api/v1/vm.add-net", nlohmann::json{{"tap", "tap0"}});
      break;
  }
  ::shutdown(listener.get(), SHUT_RDWR);  // a call that never connected unblocks accept
  peer.join();
  return 0;
}
