#include "runtime/ttrpc/testing/raw_conn.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/base/status_macros.h"
#include "runtime/ttrpc/wire.h"
#include "ttrpc/request.pb.h"

namespace kuasar::ttrpc::testing {

absl::StatusOr<RawConn> RawConn::Connect(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, "connect", path);
  }
  return RawConn(std::move(fd));
}

bool RawConn::Write(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

absl::StatusOr<DecodedFrame> RawConn::ReadFrame(std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (!decoder_.HasFrame()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return absl::DeadlineExceededError("no frame in time");
    pollfd p{fd_.get(), POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[65536];
    ssize_t n = ::read(fd_.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError("connection closed");
    decoder_.Feed(std::string_view(buf, static_cast<std::size_t>(n)));
  }
  return decoder_.Next();
}

bool RawConn::WaitClosed(std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    absl::StatusOr<DecodedFrame> f = ReadFrame(std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now()));
    if (f.ok()) continue;
    return f.status().code() == absl::StatusCode::kUnavailable;
  }
}

std::string RequestFrame(std::uint32_t stream_id, std::string_view service,
                         std::string_view method, std::string_view payload,
                         std::int64_t timeout_nano, std::uint8_t flags) {
  ::ttrpc::Request req;
  req.set_service(std::string(service));
  req.set_method(std::string(method));
  req.set_payload(std::string(payload));
  req.set_timeout_nano(timeout_nano);
  return EncodeFrame(stream_id, MessageType::kRequest, flags, req.SerializeAsString());
}

absl::Status ResponseStatus(const DecodedFrame& frame) {
  ::ttrpc::Response resp;
  if (frame.header.type != static_cast<std::uint8_t>(MessageType::kResponse) ||
      !resp.ParseFromString(frame.payload)) {
    return absl::DataLossError("not a Response frame");
  }
  return StatusFromProto(resp.status());
}

}  // namespace kuasar::ttrpc::testing
