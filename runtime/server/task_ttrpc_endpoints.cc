#include "runtime/server/task_ttrpc_endpoints.h"

#include <google/protobuf/empty.pb.h>

#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/ttrpc/typed_server.h"
#include "ttrpc/request.pb.h"

namespace kuasar {
namespace {

namespace task = containerd::task::v3;
using google::protobuf::Empty;

std::string Namespace(const ttrpc::CallContext& ctx) {
  return ctx.GetMetadata(kNamespaceMetadataKey).value_or("default");
}

// Adapts a Status-returning call to an Empty response.
absl::StatusOr<Empty> ToEmpty(absl::Status st) {
  if (!st.ok()) return st;
  return Empty();
}

absl::Status RegisterUnder(ttrpc::Server& server, std::string_view svc_name,
                           const std::shared_ptr<TaskService>& svc,
                           const std::shared_ptr<ParkedCallStore>& parked) {
  using ttrpc::CallContext;
  using ttrpc::RegisterMethod;
  RETURN_IF_ERROR((RegisterMethod<task::CreateTaskRequest, task::CreateTaskResponse>(
      server, svc_name, "Create",
      [svc](const CallContext& c, const task::CreateTaskRequest& r) {
        return svc->Create(Namespace(c), r);
      })));
  RETURN_IF_ERROR((RegisterMethod<task::StartRequest, task::StartResponse>(
      server, svc_name, "Start",
      [svc](const CallContext&, const task::StartRequest& r) { return svc->Start(r); })));
  RETURN_IF_ERROR((RegisterMethod<task::DeleteRequest, task::DeleteResponse>(
      server, svc_name, "Delete",
      [svc](const CallContext&, const task::DeleteRequest& r) { return svc->Delete(r); })));
  RETURN_IF_ERROR((RegisterMethod<task::StateRequest, task::StateResponse>(
      server, svc_name, "State",
      [svc](const CallContext&, const task::StateRequest& r) { return svc->State(r); })));
  RETURN_IF_ERROR((RegisterMethod<task::PidsRequest, task::PidsResponse>(
      server, svc_name, "Pids",
      [svc](const CallContext&, const task::PidsRequest& r) { return svc->Pids(r); })));
  RETURN_IF_ERROR((RegisterMethod<task::PauseRequest, Empty>(
      server, svc_name, "Pause",
      [svc](const CallContext&, const task::PauseRequest& r) { return ToEmpty(svc->Pause(r)); })));
  RETURN_IF_ERROR((RegisterMethod<task::ResumeRequest, Empty>(
      server, svc_name, "Resume", [svc](const CallContext&, const task::ResumeRequest& r) {
        return ToEmpty(svc->Resume(r));
      })));
  RETURN_IF_ERROR((RegisterMethod<task::CheckpointTaskRequest, Empty>(
      server, svc_name, "Checkpoint",
      [svc](const CallContext&, const task::CheckpointTaskRequest& r) {
        return ToEmpty(svc->Checkpoint(r));
      })));
  RETURN_IF_ERROR((RegisterMethod<task::KillRequest, Empty>(
      server, svc_name, "Kill",
      [svc](const CallContext&, const task::KillRequest& r) { return ToEmpty(svc->Kill(r)); })));
  RETURN_IF_ERROR((RegisterMethod<task::ExecProcessRequest, Empty>(
      server, svc_name, "Exec", [svc](const CallContext&, const task::ExecProcessRequest& r) {
        return ToEmpty(svc->Exec(r));
      })));
  RETURN_IF_ERROR((RegisterMethod<task::ResizePtyRequest, Empty>(
      server, svc_name, "ResizePty", [svc](const CallContext&, const task::ResizePtyRequest& r) {
        return ToEmpty(svc->ResizePty(r));
      })));
  RETURN_IF_ERROR((RegisterMethod<task::CloseIORequest, Empty>(
      server, svc_name, "CloseIO", [svc](const CallContext&, const task::CloseIORequest& r) {
        return ToEmpty(svc->CloseIO(r));
      })));
  RETURN_IF_ERROR((RegisterMethod<task::UpdateTaskRequest, Empty>(
      server, svc_name, "Update", [svc](const CallContext&, const task::UpdateTaskRequest& r) {
        return ToEmpty(svc->Update(r));
      })));
  RETURN_IF_ERROR((ttrpc::RegisterAsyncMethod<task::WaitRequest, task::WaitResponse>(
      server, svc_name, "Wait",
      [svc, parked](ttrpc::CallContextPtr ctx, task::WaitRequest r,
                    ttrpc::TypedResponder<task::WaitResponse> responder) {
        std::string tag = ctx->connection_tag();
        uint32_t stream = ctx->stream_id();
        bool track = parked != nullptr && !tag.empty();
        if (track) {
          ::ttrpc::Request request;
          request.set_service(ctx->service());
          request.set_method(ctx->method());
          request.set_payload(r.SerializeAsString());
          for (const auto& [k, v] : ctx->metadata()) {
            auto* kv = request.add_metadata();
            kv->set_key(k);
            kv->set_value(v);
          }
          parked->Park(tag, stream, request.SerializeAsString());
          // containerd hung up (or the call was cancelled): nothing to replay any more.
          ctx->OnCancel([parked, tag, stream] { parked->Unpark(tag, stream); });
        }
        svc->Wait(r, [responder, parked, track, tag, stream](
                         absl::StatusOr<task::WaitResponse> resp) {
          responder.Finish(resp);
          if (track) parked->Unpark(tag, stream);
        });
      })));
  RETURN_IF_ERROR((RegisterMethod<task::StatsRequest, task::StatsResponse>(
      server, svc_name, "Stats",
      [svc](const CallContext&, const task::StatsRequest& r) { return svc->Stats(r); })));
  RETURN_IF_ERROR((RegisterMethod<task::ConnectRequest, task::ConnectResponse>(
      server, svc_name, "Connect",
      [svc](const CallContext&, const task::ConnectRequest& r) { return svc->Connect(r); })));
  RETURN_IF_ERROR((RegisterMethod<task::ShutdownRequest, Empty>(
      server, svc_name, "Shutdown", [svc](const CallContext&, const task::ShutdownRequest& r) {
        return ToEmpty(svc->Shutdown(r));
      })));
  return absl::OkStatus();
}

}  // namespace

absl::Status RegisterTaskService(ttrpc::Server& server, std::shared_ptr<TaskService> service,
                                 std::shared_ptr<ParkedCallStore> parked) {
  RETURN_IF_ERROR(RegisterUnder(server, "containerd.task.v3.Task", service, parked));
  return RegisterUnder(server, "containerd.task.v2.Task", service, parked);
}

TtrpcTaskEndpoints::TtrpcTaskEndpoints(int worker_threads)
    : work_(boost::asio::make_work_guard(io_)),
      workers_(static_cast<size_t>(worker_threads)),
      io_thread_([this] { io_.run(); }) {}

TtrpcTaskEndpoints::~TtrpcTaskEndpoints() {
  std::map<std::string, Endpoint> servers;
  {
    std::lock_guard<std::mutex> l(mu_);
    servers.swap(servers_);
  }
  for (auto& [path, ep] : servers) (void)ep.server->Shutdown(std::chrono::milliseconds(500));
  servers.clear();
  workers_.join();
  work_.reset();
  io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
}

absl::Status TtrpcTaskEndpoints::Register(const std::string& key,
                                          std::shared_ptr<TaskService> service,
                                          std::shared_ptr<ParkedCallStore> parked) {
  ttrpc::ServerOptions opts;
  opts.io_context = &io_;
  opts.worker_pool = &workers_;
  auto server = std::make_shared<ttrpc::Server>(opts);
  RETURN_IF_ERROR(RegisterTaskService(*server, std::move(service), parked));
  std::lock_guard<std::mutex> l(mu_);
  if (!servers_.emplace(key, Endpoint{std::move(server), std::move(parked)}).second) {
    return absl::AlreadyExistsError(absl::StrFormat("task endpoint %s already served", key));
  }
  return absl::OkStatus();
}

absl::Status TtrpcTaskEndpoints::Serve(const std::string& socket_path,
                                       std::shared_ptr<TaskService> service) {
  RETURN_IF_ERROR(Register(socket_path, std::move(service)));
  std::shared_ptr<ttrpc::Server> server;
  {
    std::lock_guard<std::mutex> l(mu_);
    server = servers_[socket_path].server;
  }
  absl::Status st = server->Listen(socket_path, 0600);
  if (!st.ok()) Stop(socket_path);
  return st;
}

absl::Status TtrpcTaskEndpoints::Adopt(const std::string& key, UniqueFd connection,
                                       const std::string& connection_tag) {
  Endpoint ep;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = servers_.find(key);
    if (it == servers_.end()) {
      return absl::NotFoundError(absl::StrFormat("no task endpoint %s", key));
    }
    ep = it->second;
  }
  ttrpc::ServeConnectionOptions opts;
  opts.tag = connection_tag;
  if (ep.parked && !connection_tag.empty()) opts.replay = ep.parked->Parked(connection_tag);
  return ep.server->ServeConnection(std::move(connection), std::move(opts));
}

void TtrpcTaskEndpoints::Stop(const std::string& socket_path) {
  std::shared_ptr<ttrpc::Server> server;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = servers_.find(socket_path);
    if (it == servers_.end()) return;
    server = std::move(it->second.server);
    servers_.erase(it);
  }
  if (absl::Status st = server->Shutdown(std::chrono::milliseconds(200)); !st.ok()) {
    spdlog::debug("task_socket={} op=stop error=\"{}\"", socket_path, st.message());
  }
}

size_t TtrpcTaskEndpoints::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return servers_.size();
}

}  // namespace kuasar
