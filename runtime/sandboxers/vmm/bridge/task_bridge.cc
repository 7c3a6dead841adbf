#include "runtime/sandboxers/vmm/bridge/task_bridge.h"

#include <sys/stat.h>

#include <mutex>

#include <boost/asio/local/stream_protocol.hpp>

#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "runtime/base/socket_path.h"
#include "runtime/base/status_macros.h"
#include "runtime/ttrpc/framed_connection.h"
#include "ttrpc/request.pb.h"

namespace kuasar {
namespace {

using ttrpc::DecodedFrame;
using ttrpc::EncodeFrame;
using ttrpc::MessageType;

// One side of the bridge: a framed stream whose frames go to a callback.
class Pipe final : public ttrpc::FramedConnection {
 public:
  Pipe(boost::asio::io_context& io, UniqueFd fd, std::string role)
      : FramedConnection(io, std::move(fd), Options{std::chrono::milliseconds(30'000), role}) {}
  std::function<void(Pipe*, DecodedFrame&)> on_frame;
  std::function<void(Pipe*, const absl::Status&)> on_closed;

  // Any thread: queue a frame on this pipe's strand.
  void Write(std::string frame) {
    Post([self = std::static_pointer_cast<Pipe>(shared_from_this()), f = std::move(frame)]() mutable {
      self->Send(std::move(f));
    });
  }
  void Shut(absl::Status reason) {
    Post([self = std::static_pointer_cast<Pipe>(shared_from_this()), reason] { self->Close(reason); });
  }

 private:
  bool OnFrame(DecodedFrame& frame) override {
    if (on_frame) on_frame(this, frame);
    return true;
  }
  void OnClosed(const absl::Status& reason) override {
    if (on_closed) on_closed(this, reason);
  }
};

std::string StatusResponse(uint32_t id, absl::StatusCode code, std::string_view message) {
  ::ttrpc::Response resp;
  resp.mutable_status()->set_code(static_cast<int>(code));
  resp.mutable_status()->set_message(std::string(message));
  return EncodeFrame(id, MessageType::kResponse, 0, resp.SerializeAsString());
}

}  // namespace

struct TaskBridge::Impl : std::enable_shared_from_this<TaskBridge::Impl> {
  Impl(boost::asio::io_context& io, std::string path, Interceptor* icpt)
      : io(io), acceptor(io), path(std::move(path)), interceptor(icpt) {}

  struct Route {
    std::weak_ptr<Pipe> down;
    Pipe* down_raw = nullptr;
    uint32_t down_id = 0;
    bool client_closed = true;
    std::string service, method, payload;  // kept for the interceptor's OnResponse
  };

  boost::asio::io_context& io;
  boost::asio::local::stream_protocol::acceptor acceptor;
  std::string path;
  Interceptor* interceptor;
  std::shared_ptr<Pipe> up;

  mutable std::mutex mu;
  uint32_t next_up = 1;  // client-initiated ids are odd
  std::map<uint32_t, Route> routes;
  std::map<std::pair<Pipe*, uint32_t>, uint32_t> reverse;
  std::map<Pipe*, std::shared_ptr<Pipe>> downs;
  bool closed = false;
  std::function<void(const absl::Status&)> on_up_closed;

  void Accept() {
    acceptor.async_accept([self = shared_from_this()](const boost::system::error_code& ec,
                                                      boost::asio::local::stream_protocol::socket s) {
      if (ec) return;  // closed
      self->AddDown(UniqueFd(s.release()));
      self->Accept();
    });
  }

  void AddDown(UniqueFd fd) {
    auto pipe = std::make_shared<Pipe>(io, std::move(fd), "bridge downstream");
    std::weak_ptr<Impl> weak = shared_from_this();
    pipe->on_frame = [weak](Pipe* p, DecodedFrame& f) {
      if (auto self = weak.lock()) self->FromDown(p, f);
    };
    pipe->on_closed = [weak](Pipe* p, const absl::Status&) {
      if (auto self = weak.lock()) self->DownClosed(p);
    };
    {
      std::lock_guard<std::mutex> l(mu);
      if (closed) return;
      downs[pipe.get()] = pipe;
    }
    pipe->Start();
  }

  void FromDown(Pipe* p, DecodedFrame& f) {
    std::shared_ptr<Pipe> down;
    {
      std::lock_guard<std::mutex> l(mu);
      auto it = downs.find(p);
      if (it == downs.end()) return;
      down = it->second;
    }
    const uint32_t id = f.header.stream_id;
    if (f.header.type == static_cast<uint8_t>(MessageType::kRequest)) {
      if (f.oversized) {
        return down->Write(StatusResponse(id, absl::StatusCode::kResourceExhausted,
                                          "request exceeds the 4 MiB ttrpc limit"));
      }
      Route route;
      route.down = down;
      route.down_raw = p;
      route.down_id = id;
      route.client_closed = (f.header.flags & ttrpc::kFlagRemoteOpen) == 0;
      std::string payload = std::move(f.payload);
      if (interceptor != nullptr) {
        ::ttrpc::Request req;
        if (req.ParseFromString(payload)) {
          route.service = req.service();
          route.method = req.method();
          auto rewritten = interceptor->OnRequest(req.service(), req.method(), req.payload());
          if (!rewritten.ok()) {
            return down->Write(StatusResponse(id, rewritten.status().code(),
                                              std::string(rewritten.status().message())));
          }
          route.payload = *rewritten;
          req.set_payload(*rewritten);
          payload = req.SerializeAsString();
        }
      }
      uint32_t u;
      {
        std::lock_guard<std::mutex> l(mu);
        u = next_up;
        next_up += 2;
        reverse[{p, id}] = u;
        routes[u] = std::move(route);
      }
      up->Write(EncodeFrame(u, MessageType::kRequest, f.header.flags, payload));
      return;
    }
    if (f.header.type == static_cast<uint8_t>(MessageType::kData)) {
      uint32_t u = 0;
      {
        std::lock_guard<std::mutex> l(mu);
        auto it = reverse.find({p, id});
        if (it == reverse.end()) return;
        u = it->second;
        if (f.header.flags & ttrpc::kFlagRemoteClosed) routes[u].client_closed = true;
      }
      up->Write(EncodeFrame(u, MessageType::kData, f.header.flags, f.payload));
    }
  }

  void FromUp(DecodedFrame& f) {
    const uint32_t u = f.header.stream_id;
    Route route;
    bool done = false;
    {
      std::lock_guard<std::mutex> l(mu);
      auto it = routes.find(u);
      if (it == routes.end()) return;  // its caller went away
      bool response = f.header.type == static_cast<uint8_t>(MessageType::kResponse);
      bool end_data = f.header.type == static_cast<uint8_t>(MessageType::kData) &&
                      (f.header.flags & ttrpc::kFlagRemoteClosed) && it->second.client_closed;
      done = response || end_data;
      route = done ? std::move(it->second) : it->second;
      if (done) {
        reverse.erase({route.down_raw, route.down_id});
        routes.erase(it);
      }
    }
    std::shared_ptr<Pipe> down = route.down.lock();
    if (f.oversized) {
      if (down) {
        down->Write(StatusResponse(route.down_id, absl::StatusCode::kResourceExhausted,
                                   "response exceeds the 4 MiB ttrpc limit"));
      }
      return;
    }
    if (down) {
      down->Write(EncodeFrame(route.down_id, static_cast<MessageType>(f.header.type),
                              f.header.flags, f.payload));
    }
    if (done && interceptor != nullptr && !route.method.empty() &&
        f.header.type == static_cast<uint8_t>(MessageType::kResponse)) {
      ::ttrpc::Response resp;
      bool ok = resp.ParseFromString(f.payload) && resp.status().code() == 0;
      interceptor->OnResponse(route.service, route.method, route.payload, ok);
    }
  }

  void DownClosed(Pipe* p) {
    std::lock_guard<std::mutex> l(mu);
    downs.erase(p);
    for (auto it = reverse.begin(); it != reverse.end();) {
      if (it->first.first == p) {
        routes.erase(it->second);
        it = reverse.erase(it);
      } else {
        ++it;
      }
    }
  }

  void UpClosed(const absl::Status& reason) {
    std::function<void(const absl::Status&)> cb;
    std::map<Pipe*, std::shared_ptr<Pipe>> all;
    {
      std::lock_guard<std::mutex> l(mu);
      if (closed) return;
      closed = true;
      all.swap(downs);
      routes.clear();
      reverse.clear();
      cb = std::move(on_up_closed);
    }
    boost::system::error_code ec;
    acceptor.close(ec);
    ::unlink(path.c_str());
    for (auto& [raw, d] : all) d->Shut(absl::UnavailableError("the VM's agent channel closed"));
    spdlog::info("bridge={} op=upstream-closed reason=\"{}\"", path, reason.message());
    if (cb) cb(reason);
  }
};

absl::StatusOr<std::shared_ptr<TaskBridge>> TaskBridge::Start(boost::asio::io_context& io,
                                                              UniqueFd upstream,
                                                              const std::string& listen_path,
                                                              Interceptor* interceptor) {
  auto impl = std::make_shared<Impl>(io, listen_path, interceptor);
  RETURN_IF_ERROR(PrepareSocketPath(listen_path));
  boost::system::error_code ec;
  boost::asio::local::stream_protocol::endpoint ep(listen_path);
  impl->acceptor.open(ep.protocol(), ec);
  mode_t old = ::umask(0177);
  if (!ec) impl->acceptor.bind(ep, ec);
  ::umask(old);
  if (!ec) impl->acceptor.listen(64, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrFormat("bridge listen %s: %s", listen_path, ec.message()));
  }
  impl->up = std::make_shared<Pipe>(io, std::move(upstream), "bridge upstream");
  std::weak_ptr<Impl> weak = impl;
  impl->up->on_frame = [weak](Pipe*, DecodedFrame& f) {
    if (auto self = weak.lock()) self->FromUp(f);
  };
  impl->up->on_closed = [weak](Pipe*, const absl::Status& reason) {
    if (auto self = weak.lock()) self->UpClosed(reason);
  };
  impl->up->Start();
  impl->Accept();
  return std::shared_ptr<TaskBridge>(new TaskBridge(impl));
}

TaskBridge::~TaskBridge() { Close(); }

void TaskBridge::OnUpstreamClosed(std::function<void(const absl::Status&)> fn) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->on_up_closed = std::move(fn);
}

void TaskBridge::Close() {
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->on_up_closed = nullptr;  // a deliberate close is not a VM death
  }
  if (impl_->up) impl_->up->Shut(absl::CancelledError("bridge closed"));
  boost::asio::post(impl_->io, [impl = impl_] { impl->UpClosed(absl::CancelledError("bridge closed")); });
}

size_t TaskBridge::downstream_count() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->downs.size();
}

}  // namespace kuasar
