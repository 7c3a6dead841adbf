#include "runtime/server/grpc_sandbox_service.h"

#include <boost/asio/post.hpp>

#include <memory>
#include <mutex>

#include "runtime/server/proto_convert.h"

namespace kuasar {

namespace sbapi = containerd::services::sandbox::v1;

namespace {

// A Wait parked in the controller. The controller's callback and gRPC's cancellation
// race to finish it; `mu` and `finished` make exactly one win, and OnDone detaches the
// callback so a late exit never touches a finished call.
class WaitReactor final : public grpc::ServerUnaryReactor {
 public:
  struct Shared {
    std::mutex mu;
    WaitReactor* reactor = nullptr;
    bool finished = false;
  };

  explicit WaitReactor(sbapi::ControllerWaitResponse* resp)
      : resp_(resp), shared_(std::make_shared<Shared>()) {
    shared_->reactor = this;
  }

  std::shared_ptr<Shared> shared() { return shared_; }

  static void Complete(const std::shared_ptr<Shared>& s, absl::StatusOr<SandboxExit> exit) {
    std::lock_guard<std::mutex> l(s->mu);
    if (s->finished || s->reactor == nullptr) return;
    s->finished = true;
    if (!exit.ok()) {
      s->reactor->Finish(ToGrpcStatus(exit.status()));
      return;
    }
    s->reactor->resp_->set_exit_status(exit->exit_status);
    ToTimestamp(exit->exited_at, s->reactor->resp_->mutable_exited_at());
    s->reactor->Finish(grpc::Status::OK);
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> l(shared_->mu);
    if (shared_->finished) return;
    shared_->finished = true;
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "wait cancelled"));
  }

  void OnDone() override {
    {
      std::lock_guard<std::mutex> l(shared_->mu);
      shared_->reactor = nullptr;
    }
    delete this;
  }

 private:
  sbapi::ControllerWaitResponse* resp_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace

template <typename Fn>
grpc::ServerUnaryReactor* GrpcSandboxService::OnWorker(grpc::CallbackServerContext* ctx, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  boost::asio::post(*workers_, [reactor, fn = std::move(fn)]() mutable {
    reactor->Finish(ToGrpcStatus(fn()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* GrpcSandboxService::Create(grpc::CallbackServerContext* ctx,
                                                     const sbapi::ControllerCreateRequest* req,
                                                     sbapi::ControllerCreateResponse* resp) {
  return OnWorker(ctx, [this, req, resp] {
    absl::Status st = controller_->CreateSandbox(ToCreateRequest(*req));
    if (st.ok()) resp->set_sandbox_id(req->sandbox_id());
    return st;
  });
}

grpc::ServerUnaryReactor* GrpcSandboxService::Start(grpc::CallbackServerContext* ctx,
                                                    const sbapi::ControllerStartRequest* req,
                                                    sbapi::ControllerStartResponse* resp) {
  return OnWorker(ctx, [this, req, resp]() -> absl::Status {
    absl::StatusOr<StartSandboxResult> r = controller_->StartSandbox(req->sandbox_id());
    if (!r.ok()) return r.status();
    resp->set_sandbox_id(req->sandbox_id());
    resp->set_pid(r->pid);
    ToTimestamp(r->created_at, resp->mutable_created_at());
    resp->mutable_labels()->insert(r->labels.begin(), r->labels.end());
    resp->set_address(r->address);
    resp->set_version(r->version);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* GrpcSandboxService::Platform(
    grpc::CallbackServerContext* ctx, const sbapi::ControllerPlatformRequest* req,
    sbapi::ControllerPlatformResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::StatusOr<PlatformInfo> p = controller_->Platform(req->sandbox_id());
  if (p.ok()) {
    auto* out = resp->mutable_platform();
    out->set_os(p->os);
    out->set_architecture(p->architecture);
    out->set_variant(p->variant);
  }
  reactor->Finish(ToGrpcStatus(p.status()));
  return reactor;
}

grpc::ServerUnaryReactor* GrpcSandboxService::Stop(grpc::CallbackServerContext* ctx,
                                                   const sbapi::ControllerStopRequest* req,
                                                   sbapi::ControllerStopResponse*) {
  return OnWorker(ctx, [this, req] {
    // containerd sends 0 for "no timeout given": allow a graceful 10 s, as its shims do.
    absl::Duration timeout =
        req->timeout_secs() == 0 ? absl::Seconds(10) : absl::Seconds(req->timeout_secs());
    return controller_->StopSandbox(req->sandbox_id(), timeout);
  });
}

grpc::ServerUnaryReactor* GrpcSandboxService::Wait(grpc::CallbackServerContext*,
                                                   const sbapi::ControllerWaitRequest* req,
                                                   sbapi::ControllerWaitResponse* resp) {
  auto* reactor = new WaitReactor(resp);
  controller_->WaitSandbox(req->sandbox_id(),
                           [shared = reactor->shared()](absl::StatusOr<SandboxExit> exit) {
                             WaitReactor::Complete(shared, std::move(exit));
                           });
  return reactor;
}

grpc::ServerUnaryReactor* GrpcSandboxService::Status(grpc::CallbackServerContext* ctx,
                                                     const sbapi::ControllerStatusRequest* req,
                                                     sbapi::ControllerStatusResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::StatusOr<SandboxStatusInfo> s = controller_->Status(req->sandbox_id(), req->verbose());
  if (s.ok()) {
    resp->set_sandbox_id(s->id);
    resp->set_pid(s->pid);
    resp->set_state(std::string(CriStateName(s->state)));
    resp->mutable_info()->insert(s->info.begin(), s->info.end());
    ToTimestamp(s->created_at, resp->mutable_created_at());
    ToTimestamp(s->exited_at, resp->mutable_exited_at());
    resp->set_address(s->address);
    resp->set_version(s->version);
  }
  reactor->Finish(ToGrpcStatus(s.status()));
  return reactor;
}

grpc::ServerUnaryReactor* GrpcSandboxService::Shutdown(
    grpc::CallbackServerContext* ctx, const sbapi::ControllerShutdownRequest* req,
    sbapi::ControllerShutdownResponse*) {
  return OnWorker(ctx, [this, req] { return controller_->ShutdownSandbox(req->sandbox_id()); });
}

grpc::ServerUnaryReactor* GrpcSandboxService::Metrics(grpc::CallbackServerContext* ctx,
                                                      const sbapi::ControllerMetricsRequest* req,
                                                      sbapi::ControllerMetricsResponse* resp) {
  return OnWorker(ctx, [this, req, resp]() -> absl::Status {
    absl::StatusOr<MetricSample> m = controller_->Metrics(req->sandbox_id());
    if (!m.ok()) return m.status();
    auto* metric = resp->mutable_metrics();
    ToTimestamp(absl::Now(), metric->mutable_timestamp());
    metric->set_id(req->sandbox_id());
    metric->mutable_data()->set_type_url(m->type_url);
    metric->mutable_data()->set_value(m->value);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* GrpcSandboxService::Update(grpc::CallbackServerContext* ctx,
                                                     const sbapi::ControllerUpdateRequest* req,
                                                     sbapi::ControllerUpdateResponse*) {
  return OnWorker(ctx, [this, req] {
    std::map<std::string, std::string> labels(req->sandbox().labels().begin(),
                                              req->sandbox().labels().end());
    return controller_->UpdateSandbox(req->sandbox_id(), labels,
                                      {req->fields().begin(), req->fields().end()});
  });
}

}  // namespace kuasar
