#include "runtime/ttrpc/client.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <optional>
#include <thread>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"
#include "runtime/ttrpc/client_connection.h"
#include "runtime/ttrpc/wire.h"
#include "ttrpc/request.pb.h"

namespace kuasar::ttrpc {
namespace {

absl::StatusOr<std::string> EncodeRequest(std::string_view service, std::string_view method,
                                          std::string_view payload, const CallOptions& options) {
  ::ttrpc::Request req;
  req.set_service(std::string(service));
  req.set_method(std::string(method));
  req.set_payload(std::string(payload));
  if (options.timeout) {
    req.set_timeout_nano(std::max<std::int64_t>(1, options.timeout->count()));
  }
  for (const auto& [k, v] : options.metadata) {
    auto* kv = req.add_metadata();
    kv->set_key(k);
    kv->set_value(v);
  }
  return EncodeMessageFrame(0, MessageType::kRequest, 0, req);
}

std::optional<std::chrono::steady_clock::time_point> DeadlineOf(const CallOptions& options) {
  if (!options.timeout) return std::nullopt;
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(*options.timeout);
}

}  // namespace

struct Client::Impl {
  std::unique_ptr<boost::asio::io_context> owned_io;
  boost::asio::io_context* io = nullptr;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
  std::thread io_thread;
  std::shared_ptr<IoLifetime> lifetime = std::make_shared<IoLifetime>();
  std::shared_ptr<ClientConnection> conn;
  std::mutex close_mu;
  bool closed = false;

  bool OnIoThread() const { return io->get_executor().running_in_this_thread(); }
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const std::string& socket_path,
                                                        ClientOptions options) {
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("ttrpc: socket path %s is too long", socket_path));
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size());
  int rc;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    absl::Status st = ErrnoStatus(errno, "connect", socket_path);
    return absl::UnavailableError(st.message());
  }
  return FromFd(std::move(fd), std::move(options));
}

absl::StatusOr<std::unique_ptr<Client>> Client::FromFd(UniqueFd fd, ClientOptions options) {
  if (!fd) return absl::InvalidArgumentError("ttrpc: Client::FromFd needs an open fd");
  auto impl = std::make_unique<Impl>();
  if (options.io_context != nullptr) {
    impl->io = options.io_context;
  } else {
    impl->owned_io = std::make_unique<boost::asio::io_context>(1);
    impl->io = impl->owned_io.get();
    impl->work.emplace(impl->io->get_executor());
    impl->io_thread = std::thread([io = impl->io] { io->run(); });
  }
  FramedConnection::Options conn_options;
  conn_options.partial_frame_timeout = options.partial_frame_timeout;
  conn_options.role = "ttrpc client";
  impl->conn = std::make_shared<ClientConnection>(*impl->io, std::move(fd), conn_options,
                                                  std::move(options.on_disconnect));
  impl->conn->Start();
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::~Client() {
  (void)Close();
  if (impl_->owned_io) {
    impl_->lifetime->End();
    impl_->work.reset();
    impl_->owned_io->stop();
    if (impl_->io_thread.joinable()) impl_->io_thread.join();
  }
}

void Client::CallAsync(std::string_view service, std::string_view method,
                       std::string_view request, const CallOptions& options, Callback done) {
  auto call = std::make_shared<ClientCall>();
  call->deadline = DeadlineOf(options);
  absl::StatusOr<std::string> frame = EncodeRequest(service, method, request, options);
  if (!frame.ok()) {
    // Go refuses an oversized message before sending it; answer on the io thread too.
    bool posted = impl_->lifetime->Run([&] {
      impl_->conn->Post(
          [done, st = IsolatedCopy(frame.status())]() mutable { done(std::move(st)); });
    });
    if (!posted) done(frame.status());
    return;
  }
  call->request_frame = *std::move(frame);
  call->done = std::move(done);
  bool started = impl_->lifetime->Run([&] { impl_->conn->StartCall(call); });
  if (!started) call->done(absl::UnavailableError("ttrpc: client closed"));
}

absl::StatusOr<std::string> Client::Call(std::string_view service, std::string_view method,
                                         std::string_view request, const CallOptions& options) {
  if (impl_->OnIoThread()) {
    return absl::FailedPreconditionError("ttrpc: blocking Call on the client's io thread");
  }
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<absl::StatusOr<std::string>> result;
  };
  auto waiter = std::make_shared<Waiter>();
  CallAsync(service, method, request, options, [waiter](absl::StatusOr<std::string> r) {
    {
      std::lock_guard<std::mutex> lock(waiter->mu);
      waiter->result = std::move(r);
    }
    waiter->cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(waiter->mu);
  waiter->cv.wait(lock, [&] { return waiter->result.has_value(); });
  return *std::move(waiter->result);
}

absl::StatusOr<std::unique_ptr<ClientStream>> Client::NewStream(std::string_view service,
                                                                std::string_view method,
                                                                StreamKind kind,
                                                                std::string_view request,
                                                                const CallOptions& options) {
  ASSIGN_OR_RETURN(std::string frame, EncodeRequest(service, method, request, options));
  // PROTOCOL.md: remote-open while the client will send more, else remote-closed.
  frame[9] = static_cast<char>(kind.client_streaming ? kFlagRemoteOpen : kFlagRemoteClosed);
  auto state = std::make_shared<ClientStreamState>(kind);
  state->deadline = DeadlineOf(options);
  auto call = std::make_shared<ClientCall>();
  call->deadline = state->deadline;
  call->request_frame = std::move(frame);
  call->stream = state;
  bool started = impl_->lifetime->Run([&] { impl_->conn->StartCall(call); });
  if (!started) return absl::UnavailableError("ttrpc: client closed");
  return std::make_unique<ClientStream>(state, impl_->conn, impl_->lifetime,
                                        impl_->conn->write_budget());
}

absl::Status Client::Close(std::chrono::milliseconds grace) {
  {
    std::lock_guard<std::mutex> lock(impl_->close_mu);
    if (impl_->closed) return absl::OkStatus();
    impl_->closed = true;
  }
  ClientConnection& conn = *impl_->conn;
  bool on_io = impl_->OnIoThread();
  impl_->lifetime->Run([&] { conn.StopAccepting(); });
  if (grace.count() > 0 && !on_io) conn.WaitIdle(std::chrono::steady_clock::now() + grace);
  impl_->lifetime->Run([&] { conn.CloseNow(absl::UnavailableError("ttrpc: client closed")); });
  if (!on_io && !conn.WaitClosed(std::chrono::steady_clock::now() + std::chrono::seconds(10))) {
    return absl::DeadlineExceededError("ttrpc: client connection did not close within 10 s");
  }
  return absl::OkStatus();
}

bool Client::IsConnected() const { return impl_->conn->IsOpen(); }

}  // namespace kuasar::ttrpc
