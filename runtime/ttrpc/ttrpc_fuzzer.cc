// libFuzzer target for ttrpc. The first input byte picks what the rest feeds:
//   0: FrameDecoder, in chunks (sizes from the input) vs all at once: must agree.
//   1: a Server connection over a socketpair (request parsing, dispatch, streams).
//   2: a Client connection over a socketpair with calls pending (response parsing).
// Every connection must end once the peer closes; a hang aborts the run.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include "runtime/ttrpc/client.h"
#include "runtime/ttrpc/frame.h"
#include "runtime/ttrpc/server.h"
#include "runtime/ttrpc/testing/interop_service.h"

namespace kuasar::ttrpc {
namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

void FuzzDecoder(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  FrameDecoder whole, chunked;
  whole.Feed(in);
  std::size_t pos = 0, step = 1;
  while (pos < in.size()) {
    step = 1 + static_cast<unsigned char>(in[pos]) % 17;
    chunked.Feed(in.substr(pos, step));
    pos += step;
  }
  while (whole.HasFrame()) {
    Check(chunked.HasFrame());
    DecodedFrame a = whole.Next(), b = chunked.Next();
    Check(a.header.length == b.header.length && a.header.stream_id == b.header.stream_id &&
          a.header.type == b.header.type && a.header.flags == b.header.flags &&
          a.payload == b.payload && a.oversized == b.oversized);
    Check(a.oversized || a.payload.size() == a.header.length);
    if (!a.oversized) {
      std::string re = EncodeFrame(a.header.stream_id, static_cast<MessageType>(a.header.type),
                                   a.header.flags, a.payload);
      Check(DecodeFrameHeader(re.data()).length == a.header.length);
    }
  }
  Check(!chunked.HasFrame());
  Check(whole.failed() == chunked.failed() && whole.mid_frame() == chunked.mid_frame());
}

// Writes `data` to `fd`, half-closes, and reads until the other side closes.
void Exchange(int fd, const std::uint8_t* data, std::size_t size) {
  std::size_t off = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  bool write_done = size == 0;
  if (write_done) ::shutdown(fd, SHUT_WR);
  for (;;) {
    Check(std::chrono::steady_clock::now() < deadline);  // the connection must end
    pollfd p{fd, static_cast<short>(POLLIN | (write_done ? 0 : POLLOUT)), 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[65536];
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return;
    }
    if (!write_done && (p.revents & POLLOUT)) {
      ssize_t n = ::send(fd, data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) off += static_cast<std::size_t>(n);
      if (off == size || (n < 0 && errno == EPIPE)) {
        write_done = true;
        ::shutdown(fd, SHUT_WR);
      }
    }
  }
}

Server& FuzzServer() {
  static Server* server = [] {
    ServerOptions opts;
    opts.io_threads = 1;
    opts.worker_threads = 4;
    auto* s = new Server(opts);
    Check(testing::RegisterInteropService(*s).ok());
    return s;
  }();
  return *server;
}

void FuzzServerConnection(const std::uint8_t* data, std::size_t size) {
  int sv[2];
  Check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  Check(FuzzServer().ServeConnection(UniqueFd(sv[0])).ok());
  UniqueFd peer(sv[1]);
  Exchange(peer.get(), data, size);
}

// One io thread for every client connection of the run; never torn down.
struct ClientIoThread {
  ClientIoThread() : work(io.get_executor()), thread([this] { io.run(); }) {}
  boost::asio::io_context io{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work;
  std::thread thread;
};

boost::asio::io_context& ClientIo() {
  static ClientIoThread* holder = new ClientIoThread();
  return holder->io;
}

void FuzzClientConnection(const std::uint8_t* data, std::size_t size) {
  int sv[2];
  Check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  UniqueFd peer(sv[1]);
  ClientOptions opts;
  opts.io_context = &ClientIo();
  auto client = Client::FromFd(UniqueFd(sv[0]), opts);
  Check(client.ok());
  struct Pending {
    std::mutex mu;
    std::condition_variable cv;
    int left = 2;
  };
  auto pending = std::make_shared<Pending>();
  auto done = [pending](absl::StatusOr<std::string>) {
    std::lock_guard<std::mutex> lock(pending->mu);
    --pending->left;
    pending->cv.notify_all();
  };
  (*client)->CallAsync("s", "A", "x", {}, done);                        // stream 1
  (*client)->CallAsync("s", "B", "", {}, done);                         // stream 3
  auto ss = (*client)->NewStream("s", "C", {false, true}, "q");         // stream 5
  auto bidi = (*client)->NewStream("s", "D", {true, true});             // stream 7
  Check(ss.ok() && bidi.ok());
  (void)(*bidi)->Send("m");
  Exchange(peer.get(), data, size);
  {
    std::unique_lock<std::mutex> lock(pending->mu);
    Check(pending->cv.wait_for(lock, std::chrono::seconds(20), [&] { return pending->left == 0; }));
  }
  std::string msg;
  while ((*ss)->Recv(&msg)) {
  }
  (void)(*ss)->Finish();
  (void)(*bidi)->Finish();
  Check((*client)->Close().ok());
}

}  // namespace
}  // namespace kuasar::ttrpc

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Hostile input makes protobuf and the connections log on every run; keep it quiet.
  google::protobuf::SetLogHandler(nullptr);
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0] % 3;
  ++data;
  --size;
  switch (mode) {
    case 0:
      kuasar::ttrpc::FuzzDecoder(data, size);
      break;
    case 1:
      kuasar::ttrpc::FuzzServerConnection(data, size);
      break;
    default:
      kuasar::ttrpc::FuzzClientConnection(data, size);
      break;
  }
  return 0;
}
