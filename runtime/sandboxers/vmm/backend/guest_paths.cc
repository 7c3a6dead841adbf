#include "runtime/sandboxers/vmm/backend/guest_paths.h"

#include <random>

#include "absl/strings/str_format.h"
#include "containerd/task/v3/shim.pb.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/backend/shared_bundle.h"

namespace kuasar {
namespace {

namespace task = containerd::task::v3;

constexpr std::string_view kStreamScheme = "kuasar-stream://";

bool IsTaskService(const std::string& service) {
  return service == "containerd.task.v3.Task" || service == "containerd.task.v2.Task";
}

std::string RandomPrefix() {
  std::random_device rd;
  return absl::StrFormat("k%08x", rd());
}

template <typename Msg>
absl::StatusOr<Msg> Parse(const std::string& payload, std::string_view what) {
  Msg m;
  if (!m.ParseFromString(payload)) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: request does not parse", what));
  }
  return m;
}

}  // namespace

GuestPaths::GuestPaths(std::string host_shared, std::string guest_shared)
    : host_shared_(std::move(host_shared)),
      guest_shared_(std::move(guest_shared)),
      token_prefix_(RandomPrefix()) {}

GuestPaths::~GuestPaths() { Shutdown(); }

void GuestPaths::SetAgentSocket(std::string path) {
  std::lock_guard<std::mutex> l(mu_);
  agent_socket_ = std::move(path);
}

absl::StatusOr<std::shared_ptr<ttrpc::Client>> GuestPaths::Client() {
  std::lock_guard<std::mutex> l(mu_);
  if (shut_) return absl::UnavailableError("the pod is going away");
  if (client_ && client_->IsConnected()) return client_;
  if (agent_socket_.empty()) return absl::FailedPreconditionError("the agent is not reachable yet");
  ASSIGN_OR_RETURN(std::unique_ptr<ttrpc::Client> c, ttrpc::Client::Connect(agent_socket_));
  client_ = std::move(c);
  return client_;
}

absl::StatusOr<std::string> GuestPaths::OnRequest(const std::string& service,
                                                  const std::string& method, std::string payload) {
  if (!IsTaskService(service)) return payload;
  if (method == "Create") return OnCreate(std::move(payload));
  if (method == "Exec") return OnExec(std::move(payload));
  if (method == "CloseIO") return OnCloseIO(std::move(payload));
  return payload;
}

void GuestPaths::OnResponse(const std::string& service, const std::string& method,
                            const std::string& request_payload, bool ok) {
  if (!IsTaskService(service)) return;
  if (method == "Delete") {
    if (ok) OnDeleted(request_payload);
    return;
  }
  if (method != "Create" && method != "Exec") return;
  Key key;
  if (method == "Create") {
    task::CreateTaskRequest req;
    if (!req.ParseFromString(request_payload)) return;
    key = {req.id(), ""};
  } else {
    task::ExecProcessRequest req;
    if (!req.ParseFromString(request_payload)) return;
    key = {req.id(), req.exec_id()};
  }
  std::unique_lock<std::mutex> l(mu_);
  ReapLocked();
  auto it = pending_.find(key);
  std::unique_ptr<StdioPump> pump;
  if (it != pending_.end()) {
    pump = std::move(it->second);
    pending_.erase(it);
  }
  if (ok) {
    if (pump && !shut_) {
      pump->Start([this] { return Client(); });
      running_[key] = std::move(pump);
    }
    return;
  }
  if (pump) Retire(std::move(pump));
  l.unlock();
  if (method == "Create") {
    // The agent refused the container: its shared copy goes.
    if (absl::Status st = UnshareBundle(host_shared_, key.first); !st.ok()) {
      spdlog::warn("container={} op=unshare-bundle error=\"{}\"", key.first, st.message());
    }
  }
}

absl::StatusOr<std::unique_ptr<StdioPump>> GuestPaths::PlanStdio(const Key& key,
                                                                 const std::string& in,
                                                                 const std::string& out,
                                                                 const std::string& err,
                                                                 std::string guest[3]) {
  const std::string* host[3] = {&in, &out, &err};
  StdioPump::Pipe* pipes[3];
  StdioPump::Spec spec;
  pipes[0] = &spec.in, pipes[1] = &spec.out, pipes[2] = &spec.err;
  bool any = false;
  for (int i = 0; i < 3; ++i) {
    const std::string& h = *host[i];
    guest[i] = h;
    if (h.empty() || h.starts_with(kStreamScheme)) continue;
    // containerd gives FIFO paths; other clients (ctr --log-uri, the Python package) may
    // name a log file to append an output to.
    constexpr std::string_view kFile = "file://";
    bool file = i > 0 && h.starts_with(kFile) && h.size() > kFile.size() &&
                h[kFile.size()] == '/';
    if (!h.starts_with("/") && !file) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "stdio \"%s\": a VM pod takes FIFO paths or, for outputs, file:///PATH", h));
    }
    pipes[i]->host_path = file ? h.substr(kFile.size()) : h;
    pipes[i]->append_file = file;
    if (i == 2 && h == out) {
      pipes[2]->token = pipes[1]->token;  // one FIFO for both: one stream
    } else {
      std::lock_guard<std::mutex> l(mu_);
      pipes[i]->token = absl::StrFormat("%s-%d", token_prefix_, ++next_token_);
    }
    guest[i] = std::string(kStreamScheme) + pipes[i]->token;
    any = true;
  }
  if (!any) return std::unique_ptr<StdioPump>();
  std::string name = key.second.empty() ? key.first : key.first + "/" + key.second;
  return StdioPump::Open(std::move(name), std::move(spec));
}

absl::StatusOr<std::string> GuestPaths::OnCreate(std::string payload) {
  ASSIGN_OR_RETURN(auto req, Parse<task::CreateTaskRequest>(payload, "Task.Create"));
  const Key key{req.id(), ""};
  {
    std::lock_guard<std::mutex> l(mu_);
    if (shut_) return absl::UnavailableError("the pod is going away");
    if (pending_.contains(key) || running_.contains(key)) {
      return absl::AlreadyExistsError(absl::StrFormat("container %s already exists", req.id()));
    }
  }
  std::string guest[3];
  ASSIGN_OR_RETURN(std::unique_ptr<StdioPump> pump,
                   PlanStdio(key, req.stdin(), req.stdout(), req.stderr(), guest));
  std::vector<MountSpec> rootfs;
  for (const auto& m : req.rootfs()) {
    rootfs.push_back({m.type(), m.source(), m.target(), {m.options().begin(), m.options().end()}});
  }
  ASSIGN_OR_RETURN(std::string bundle,
                   ShareBundle(host_shared_, guest_shared_, req.id(), req.bundle(), rootfs));
  spdlog::info("container={} op=share-bundle host={} guest={} rootfs_mounts={}", req.id(),
               req.bundle(), bundle, rootfs.size());
  req.set_bundle(bundle);
  req.clear_rootfs();
  req.set_stdin(guest[0]);
  req.set_stdout(guest[1]);
  req.set_stderr(guest[2]);
  if (pump) {
    std::lock_guard<std::mutex> l(mu_);
    pending_[key] = std::move(pump);
  }
  return req.SerializeAsString();
}

absl::StatusOr<std::string> GuestPaths::OnExec(std::string payload) {
  ASSIGN_OR_RETURN(auto req, Parse<task::ExecProcessRequest>(payload, "Task.Exec"));
  const Key key{req.id(), req.exec_id()};
  {
    std::lock_guard<std::mutex> l(mu_);
    if (shut_) return absl::UnavailableError("the pod is going away");
    if (pending_.contains(key) || running_.contains(key)) {
      return absl::AlreadyExistsError(
          absl::StrFormat("exec %s already exists in container %s", req.exec_id(), req.id()));
    }
  }
  std::string guest[3];
  ASSIGN_OR_RETURN(std::unique_ptr<StdioPump> pump,
                   PlanStdio(key, req.stdin(), req.stdout(), req.stderr(), guest));
  if (!pump) return payload;
  req.set_stdin(guest[0]);
  req.set_stdout(guest[1]);
  req.set_stderr(guest[2]);
  {
    std::lock_guard<std::mutex> l(mu_);
    pending_[key] = std::move(pump);
  }
  return req.SerializeAsString();
}

absl::StatusOr<std::string> GuestPaths::OnCloseIO(std::string payload) {
  ASSIGN_OR_RETURN(auto req, Parse<task::CloseIORequest>(payload, "Task.CloseIO"));
  if (!req.stdin()) return payload;
  std::lock_guard<std::mutex> l(mu_);
  auto it = running_.find({req.id(), req.exec_id()});
  if (it == running_.end() || !it->second->has_stdin()) return payload;
  // The pump ends the stream once it has forwarded what containerd wrote, and the agent
  // closes stdin then: closing it now could cut off data still on its way.
  it->second->CloseStdin();
  req.set_stdin(false);
  return req.SerializeAsString();
}

void GuestPaths::OnDeleted(const std::string& payload) {
  task::DeleteRequest req;
  if (!req.ParseFromString(payload)) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    ReapLocked();
    for (auto* m : {&pending_, &running_}) {
      for (auto it = m->begin(); it != m->end();) {
        // Deleting the init process deletes the container with its execs.
        bool match = it->first.first == req.id() &&
                     (req.exec_id().empty() || it->first.second == req.exec_id());
        if (match) {
          Retire(std::move(it->second));
          it = m->erase(it);
        } else {
          ++it;
        }
      }
    }
  }
  if (!req.exec_id().empty()) return;
  if (absl::Status st = UnshareBundle(host_shared_, req.id()); !st.ok()) {
    spdlog::warn("container={} op=unshare-bundle error=\"{}\"", req.id(), st.message());
  } else {
    spdlog::info("container={} op=unshare-bundle", req.id());
  }
}

void GuestPaths::Retire(std::unique_ptr<StdioPump> pump) {
  pump->Stop();
  retired_.push_back(std::move(pump));
}

void GuestPaths::ReapLocked() {
  std::erase_if(retired_, [](const std::unique_ptr<StdioPump>& p) { return p->Finished(); });
}

void GuestPaths::Shutdown() {
  std::shared_ptr<ttrpc::Client> client;
  std::vector<std::unique_ptr<StdioPump>> pumps;
  {
    std::lock_guard<std::mutex> l(mu_);
    shut_ = true;
    client = std::move(client_);
    for (auto* m : {&pending_, &running_}) {
      for (auto& [key, p] : *m) pumps.push_back(std::move(p));
      m->clear();
    }
    for (auto& p : retired_) pumps.push_back(std::move(p));
    retired_.clear();
  }
  for (auto& p : pumps) p->Stop();
  if (client) (void)client->Close();  // every stream still open ends now
  pumps.clear();                      // joins
}

size_t GuestPaths::pump_count() const {
  std::lock_guard<std::mutex> l(mu_);
  size_t n = pending_.size() + running_.size();
  for (const auto& p : retired_) n += p->Finished() ? 0 : 1;
  return n;
}

}  // namespace kuasar
