#include "runtime/sandboxers/vmm/common/qmp_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/common/qmp_connection.h"

namespace kuasar::vmm {
namespace {

using nlohmann::json;

// The handshake runs on the raw fd before Asio owns it: it is strictly request/reply and
// the caller blocks on it anyway.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}

  absl::StatusOr<std::string> ReadLine(absl::Time deadline) {
    while (true) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      if (buf_.size() > kMaxQmpLine) return absl::DataLossError("QMP: greeting line too long");
      absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        return absl::DeadlineExceededError(
            "QMP: no greeting or capabilities reply in time "
            "(is another client connected?)");
      }
      pollfd p{fd_, POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return ErrnoStatus(errno, "poll", "QMP socket");
      if (r == 0) continue;
      char chunk[4096];
      ssize_t n = ::read(fd_, chunk, sizeof(chunk));
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n < 0) return ErrnoStatus(errno, "read", "QMP socket");
      if (n == 0) return absl::UnavailableError("QMP: connection closed during the handshake");
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }
  std::string TakeRest() { return std::move(buf_); }

 private:
  int fd_;
  std::string buf_;
};

absl::Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "send", "QMP socket");
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::StatusOr<json> ParseObject(std::string_view line) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(absl::StrFormat("QMP: not a JSON object: %.200s", line));
  }
  return j;
}

}  // namespace

absl::Status QmpErrorToStatus(std::string_view command, const json& error) {
  std::string cls = "GenericError";
  std::string desc = "(no description)";
  if (error.is_object()) {
    if (auto it = error.find("class"); it != error.end() && it->is_string()) cls = *it;
    if (auto it = error.find("desc"); it != error.end() && it->is_string()) desc = *it;
  }
  absl::StatusCode code = absl::StatusCode::kUnknown;
  if (cls == "CommandNotFound") {
    code = absl::StatusCode::kUnimplemented;
  } else if (cls == "DeviceNotFound") {
    code = absl::StatusCode::kNotFound;
  } else if (cls == "DeviceNotActive" || cls == "KVMMissingCap") {
    code = absl::StatusCode::kFailedPrecondition;
  }
  return absl::Status(code, absl::StrFormat("QMP %s: %s: %s", command, cls, desc));
}

struct QmpClient::Impl {
  std::unique_ptr<boost::asio::io_context> owned_io;
  boost::asio::io_context* io = nullptr;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
  std::thread io_thread;
  std::shared_ptr<QmpConnection> conn;

  bool OnIoThread() const { return io->get_executor().running_in_this_thread(); }
};

QmpClient::QmpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<QmpClient>> QmpClient::Connect(const std::string& socket_path,
                                                              absl::Time deadline,
                                                              QmpClientOptions options) {
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("QMP socket path %s is too long for a unix socket", socket_path));
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size());
  absl::Status last;
  while (true) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return ErrnoStatus(errno, "socket");
    int rc;
    do {
      rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    } while (rc != 0 && errno == EINTR);
    if (rc == 0) return FromFd(std::move(fd), std::move(options));
    int err = errno;
    last = ErrnoStatus(err, "connect", socket_path);
    if (err != ENOENT && err != ECONNREFUSED) return last;
    if (options.keep_trying) RETURN_IF_ERROR(options.keep_trying());
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrFormat("QMP socket %s did not accept in time: %s", socket_path, last.message()));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

absl::StatusOr<std::unique_ptr<QmpClient>> QmpClient::FromFd(UniqueFd fd,
                                                             QmpClientOptions options) {
  if (!fd) return absl::InvalidArgumentError("QmpClient::FromFd needs an open fd");
  absl::Time deadline = absl::Now() + options.handshake_timeout;
  LineReader reader(fd.get());
  ASSIGN_OR_RETURN(std::string line, reader.ReadLine(deadline));
  ASSIGN_OR_RETURN(json greeting, ParseObject(line));
  auto qmp = greeting.find("QMP");
  if (qmp == greeting.end() || !qmp->is_object()) {
    return absl::DataLossError(absl::StrFormat("QMP: expected a greeting, got %.200s", line));
  }
  RETURN_IF_ERROR(WriteAll(fd.get(), "{\"execute\":\"qmp_capabilities\",\"id\":0}\n"));
  while (true) {
    ASSIGN_OR_RETURN(line, reader.ReadLine(deadline));
    ASSIGN_OR_RETURN(json reply, ParseObject(line));
    if (reply.contains("error")) return QmpErrorToStatus("qmp_capabilities", reply["error"]);
    if (reply.contains("return")) break;
  }

  auto impl = std::make_unique<Impl>();
  if (options.io_context != nullptr) {
    impl->io = options.io_context;
  } else {
    impl->owned_io = std::make_unique<boost::asio::io_context>(1);
    impl->io = impl->owned_io.get();
    impl->work.emplace(impl->io->get_executor());
    impl->io_thread = std::thread([io = impl->io] { io->run(); });
  }
  impl->conn = std::make_shared<QmpConnection>(*impl->io, std::move(fd), reader.TakeRest(),
                                               std::move(options.on_event),
                                               std::move(options.on_disconnect));
  impl->conn->Start();
  auto client = std::unique_ptr<QmpClient>(new QmpClient(std::move(impl)));
  client->greeting_ = std::move(*qmp);
  return client;
}

QmpClient::~QmpClient() {
  Close();
  if (impl_->owned_io) {
    impl_->work.reset();
    impl_->owned_io->stop();
    if (impl_->io_thread.joinable()) impl_->io_thread.join();
  }
}

void QmpClient::ExecuteAsync(std::string_view command, const json& arguments,
                             absl::Duration timeout, Callback done) {
  json msg = {{"execute", std::string(command)}};
  if (!arguments.is_null()) msg["arguments"] = arguments;
  impl_->conn->Submit(std::string(command), std::move(msg), timeout, std::move(done));
}

absl::StatusOr<json> QmpClient::Execute(std::string_view command, const json& arguments,
                                        absl::Duration timeout) {
  if (impl_->OnIoThread()) {
    return absl::FailedPreconditionError("QMP: blocking Execute on the client's io thread");
  }
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<absl::StatusOr<json>> result;
  };
  auto waiter = std::make_shared<Waiter>();
  ExecuteAsync(command, arguments, timeout, [waiter](absl::StatusOr<json> r) {
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

bool QmpClient::IsConnected() const { return impl_->conn->IsOpen(); }

void QmpClient::Close() {
  if (impl_->OnIoThread()) {
    impl_->conn->CloseNow(absl::UnavailableError("QMP: client closed"), /*final=*/true);
    return;
  }
  impl_->conn->CloseAndWait(absl::Seconds(5));
}

}  // namespace kuasar::vmm
