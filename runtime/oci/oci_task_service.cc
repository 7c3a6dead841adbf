#include "runtime/oci/oci_task_service.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "absl/strings/str_format.h"
#include "containerd/events/task.pb.h"
#include "runtime/base/child_process.h"
#include "runtime/base/id_check.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/unique_fd.h"
#include "runtime/oci/oci_spec.h"
#include "runtime/oci/rootfs_mount.h"

namespace kuasar {
namespace {

// Writes a net.* sysctl of our own network namespace; the key is checked to name a file
// under /proc/sys/net only.
absl::Status WriteNetSysctl(const std::string& key, const std::string& value) {
  if (!key.starts_with("net.") || key.find("..") != std::string::npos ||
      key.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_.-") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrFormat("sysctl \"%s\": not a net.* key", key));
  }
  std::string path = "/proc/sys/" + key;
  std::replace(path.begin() + 10, path.end(), '.', '/');
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd || ::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return absl::InvalidArgumentError(
        absl::StrFormat("sysctl %s=%s: %s", key, value, std::strerror(errno)));
  }
  return absl::OkStatus();
}


namespace events = containerd::events;

void SetTime(absl::Time t, google::protobuf::Timestamp* ts) {
  if (t == absl::UnixEpoch() || t == absl::Time()) return;
  int64_t ns = absl::ToUnixNanos(t);
  ts->set_seconds(ns / 1000000000);
  ts->set_nanos(static_cast<int32_t>(ns % 1000000000));
}

absl::Status CheckBundle(const std::string& bundle) {
  if (bundle.empty() || bundle[0] != '/' || bundle.find("/../") != std::string::npos ||
      bundle.ends_with("/..")) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bundle \"%s\" must be an absolute path without \"..\"", bundle));
  }
  return CheckRealDirectory(bundle);
}

}  // namespace

OciTaskService::OciTaskService(OciTaskServiceDeps deps) : d_(std::move(deps)) {}

OciTaskService::~OciTaskService() {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& [id, c] : containers_) {
    if (c->init.io) c->init.io->Close();
    for (auto& [eid, p] : c->execs) {
      if (p.io) p.io->Close();
    }
  }
}

std::shared_ptr<OciContainer> OciTaskService::Find(const std::string& id) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = containers_.find(id);
  return it == containers_.end() ? nullptr : it->second;
}

absl::StatusOr<std::shared_ptr<OciContainer>> OciTaskService::Get(const std::string& id) const {
  RETURN_IF_ERROR(ValidateId(id, "container id"));
  auto c = Find(id);
  if (!c) return absl::NotFoundError(absl::StrFormat("container %s not found", id));
  return c;
}

size_t OciTaskService::container_count() const {
  std::lock_guard<std::mutex> l(mu_);
  return containers_.size();
}

nlohmann::json OciTaskService::ContainersJson() const {
  std::lock_guard<std::mutex> l(mu_);
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [id, c] : containers_) out[id] = c->ToJson();
  return out;
}

void OciTaskService::Persist() {
  if (d_.persist) d_.persist(ContainersJson());
}

std::string OciTaskService::ConsoleSocketPath(const std::string&, const std::string&) {
  // Short names: containerd's ids are 64 characters and unix socket paths stop at 107.
  return absl::StrFormat("%s/con%d.sock", d_.socket_dir.empty() ? d_.sandbox_dir : d_.socket_dir,
                         console_seq_.fetch_add(1));
}

absl::Status OciTaskService::PrepareBundle(OciContainer& c, bool* terminal) {
  std::string config = c.bundle + "/config.json";
  ASSIGN_OR_RETURN(OciSpec spec, OciSpec::Load(config));
  *terminal = spec.terminal();
  c.cgroups_path = spec.cgroups_path();
  // What containerd's pause sandbox would have provided, from the pod's own files.
  const PodFiles& f = d_.pod_files;
  bool changed = false;
  auto bind = [&](const std::string& src, const char* dst, bool ro) {
    if (src.empty() || spec.HasMountAt(dst) || ::access(src.c_str(), F_OK) != 0) return;
    spec.AddBindMount(src, dst, ro);
    changed = true;
  };
  bind(f.hostname, "/etc/hostname", false);
  bind(f.hosts, "/etc/hosts", false);
  bind(f.resolv_conf, "/etc/resolv.conf", false);
  bind(f.shm, "/dev/shm", false);
  changed |= d_.engine->AdaptSpec(spec);
  if (d_.guest_namespaces) {
    // The pod's namespaces are the agent's own (a VM's): containers inherit them. A
    // joined network namespace dropped leaves runc no namespace of the container's to
    // set net.* sysctls in (it refuses them in "the host's"): they are the pod's, so
    // they go into the agent's namespace, which is the pod's.
    if (spec.JoinsNamespace("network")) {
      for (const auto& [key, value] : spec.TakeSysctls("net.")) {
        RETURN_IF_ERROR(WriteNetSysctl(key, value));
        changed = true;
      }
    }
    changed |= spec.DropJoinedNamespaces() > 0;
  }
  if (changed) RETURN_IF_ERROR(spec.Save(config));
  return absl::OkStatus();
}

absl::StatusOr<task::CreateTaskResponse> OciTaskService::Create(std::string_view ns,
                                                                 const task::CreateTaskRequest& req) {
  RETURN_IF_ERROR(ValidateId(req.id(), "container id"));
  RETURN_IF_ERROR(CheckBundle(req.bundle()));
  if (!req.checkpoint().empty()) {
    return absl::UnimplementedError("checkpoint/restore is not supported by the runc sandboxer");
  }
  auto c = std::make_shared<OciContainer>();
  c->id = req.id();
  c->ns = std::string(ns);
  c->bundle = req.bundle();
  for (const auto& m : req.rootfs()) {
    c->rootfs.push_back({m.type(), m.source(), m.target(), {m.options().begin(), m.options().end()}});
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!containers_.emplace(c->id, c).second) {
      return absl::AlreadyExistsError(absl::StrFormat("container %s already exists", c->id));
    }
  }
  std::lock_guard<std::mutex> op(c->op_mu);
  auto fail = [&](absl::Status st) {
    Teardown(*c);
    std::lock_guard<std::mutex> l(mu_);
    containers_.erase(c->id);
    spdlog::warn("sandbox={} container={} op=create error=\"{}\"", d_.sandbox_id, c->id,
                 st.message());
    return Annotate(st, absl::StrFormat("create container %s", c->id));
  };

  bool terminal = false;
  if (absl::Status st = PrepareBundle(*c, &terminal); !st.ok()) return fail(st);
  if (terminal != req.terminal()) {
    return fail(absl::InvalidArgumentError("terminal flag disagrees with the OCI spec"));
  }
  if (!c->rootfs.empty()) {
    std::string target = c->bundle + "/rootfs";
    ::mkdir(target.c_str(), 0711);
    if (absl::Status st = MountRootfs(c->rootfs, target); !st.ok()) return fail(st);
    c->rootfs_mounted = true;
  }
  OciProcess& p = c->init;
  p.stdin_path = req.stdin();
  p.stdout_path = req.stdout();
  p.stderr_path = req.stderr();
  p.terminal = terminal;
  std::string console = terminal ? ConsoleSocketPath(c->id, "") : "";
  auto io = ProcessIo::Open(*d_.io, {p.stdin_path, p.stdout_path, p.stderr_path, terminal}, console);
  if (!io.ok()) return fail(io.status());
  p.io = std::move(*io);
  auto pid = d_.engine->Create(*d_.spawner,
                               {c->id, c->bundle, console, p.io->RuntimeStdio()});
  p.io->ReleaseRuntimeStdio();
  if (!pid.ok()) return fail(pid.status());
  if (terminal) {
    if (absl::Status st = p.io->AfterRuntimeStarted(absl::Seconds(10)); !st.ok()) return fail(st);
  }
  auto ident = IdentifyProcess(*pid);
  p.identity = ident.ok() ? *ident : ProcessIdentity{*pid, 0};
  WatchExit(c, "", *pid);
  if (d_.oom != nullptr && !c->cgroups_path.empty()) {
    std::string ns_copy = c->ns, id = c->id;
    EventPublisher* pub = d_.events;
    absl::Status st = d_.oom->Watch(id, c->cgroups_path, [pub, ns_copy, id] {
      events::TaskOOM e;
      e.set_container_id(id);
      pub->Publish(ns_copy, kTopicTaskOOM, e);
    });
    if (!st.ok()) spdlog::warn("container={} op=oom-watch error=\"{}\"", id, st.message());
  }
  Persist();
  events::TaskCreate e;
  e.set_container_id(c->id);
  e.set_bundle(c->bundle);
  *e.mutable_rootfs() = req.rootfs();
  e.mutable_io()->set_stdin(p.stdin_path);
  e.mutable_io()->set_stdout(p.stdout_path);
  e.mutable_io()->set_stderr(p.stderr_path);
  e.mutable_io()->set_terminal(terminal);
  e.set_pid(static_cast<uint32_t>(*pid));
  d_.events->Publish(c->ns, kTopicTaskCreate, e);
  spdlog::info("sandbox={} container={} op=create pid={}", d_.sandbox_id, c->id, *pid);
  task::CreateTaskResponse resp;
  resp.set_pid(static_cast<uint32_t>(*pid));
  return resp;
}

void OciTaskService::WatchExit(const std::shared_ptr<OciContainer>& c, const std::string& exec_id,
                                pid_t pid) {
  std::weak_ptr<OciContainer> weak = c;
  d_.exits->Watch(pid, [this, weak, exec_id](int status, absl::Time at) {
    if (auto c = weak.lock()) OnExit(c, exec_id, status, at);
  });
}

void OciTaskService::OnExit(const std::shared_ptr<OciContainer>& c, const std::string& exec_id,
                             int wait_status, absl::Time at) {
  uint32_t code = static_cast<uint32_t>(ExitCodeFromWaitStatus(wait_status));
  ProcessIo* io = nullptr;
  {
    std::lock_guard<std::mutex> l(mu_);
    OciProcess* p = c->Find(exec_id);
    if (p == nullptr) return;
    p->exit_seen = true;
    if (p->terminal && p->io) io = p->io.get();
  }
  if (io == nullptr) return FinishExit(c, exec_id, code, at);
  // A terminal's output may still be in flight: report the exit once it drained, or
  // after a bound if a background process keeps the terminal open.
  auto once = std::make_shared<std::atomic<bool>>(false);
  auto finish = [this, c, exec_id, code, at, once] {
    if (!once->exchange(true)) FinishExit(c, exec_id, code, at);
  };
  auto timer = std::make_shared<boost::asio::steady_timer>(*d_.io, std::chrono::seconds(2));
  timer->async_wait([finish, timer](const boost::system::error_code&) { finish(); });
  io->OnOutputDone([finish, timer] {
    finish();
    timer->cancel();
  });
}

void OciTaskService::FinishExit(const std::shared_ptr<OciContainer>& c, const std::string& exec_id,
                                 uint32_t code, absl::Time at) {
  std::vector<std::function<void(ExitInfo)>> waiters;
  events::TaskExit e;
  {
    std::lock_guard<std::mutex> l(mu_);
    OciProcess* p = c->Find(exec_id);
    if (p == nullptr || p->status == containerd::v1::types::STOPPED) return;
    p->status = containerd::v1::types::STOPPED;
    p->exit = {code, at};
    waiters.swap(p->waiters);
    e.set_container_id(c->id);
    e.set_id(exec_id.empty() ? c->id : exec_id);
    e.set_pid(static_cast<uint32_t>(p->identity.pid));
    e.set_exit_status(code);
    SetTime(at, e.mutable_exited_at());
  }
  Persist();
  d_.events->Publish(c->ns, kTopicTaskExit, e);
  spdlog::info("sandbox={} container={} exec={} op=exit status={}", d_.sandbox_id, c->id, exec_id,
               code);
  for (auto& w : waiters) w({code, at});
}

absl::StatusOr<task::StartResponse> OciTaskService::Start(const task::StartRequest& req) {
  ASSIGN_OR_RETURN(auto c, Get(req.id()));
  std::lock_guard<std::mutex> op(c->op_mu);
  bool is_init = req.exec_id().empty();
  OciProcess* p;
  std::string process_json;
  bool terminal = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    p = c->Find(req.exec_id());
    if (p == nullptr) {
      return absl::NotFoundError(absl::StrFormat("process %s of container %s not found",
                                                 req.exec_id(), req.id()));
    }
    if (p->status != containerd::v1::types::CREATED) {
      return absl::FailedPreconditionError(
          absl::StrFormat("process %s of container %s is not in the created state",
                          is_init ? req.id() : req.exec_id(), req.id()));
    }
    process_json = p->process_json;
    terminal = p->terminal;
  }
  task::StartResponse resp;
  if (is_init) {
    RETURN_IF_ERROR(Annotate(d_.engine->Start(c->id), absl::StrFormat("start container %s", c->id)));
    resp.set_pid(static_cast<uint32_t>(p->identity.pid));
  } else {
    std::string console = terminal ? ConsoleSocketPath(c->id, req.exec_id()) : "";
    ASSIGN_OR_RETURN(auto io, ProcessIo::Open(*d_.io, {p->stdin_path, p->stdout_path,
                                                       p->stderr_path, terminal}, console));
    auto pid = d_.engine->Exec(*d_.spawner, {c->id, req.exec_id(), c->bundle, process_json,
                                             console, io->RuntimeStdio()});
    io->ReleaseRuntimeStdio();
    if (!pid.ok()) return Annotate(pid.status(), absl::StrFormat("exec in container %s", c->id));
    if (terminal) RETURN_IF_ERROR(io->AfterRuntimeStarted(absl::Seconds(10)));
    auto ident = IdentifyProcess(*pid);
    {
      std::lock_guard<std::mutex> l(mu_);
      p->identity = ident.ok() ? *ident : ProcessIdentity{*pid, 0};
      p->io = std::move(io);
    }
    WatchExit(c, req.exec_id(), *pid);
    resp.set_pid(static_cast<uint32_t>(*pid));
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!p->exit_seen) p->status = containerd::v1::types::RUNNING;
  }
  Persist();
  if (is_init) {
    events::TaskStart e;
    e.set_container_id(c->id);
    e.set_pid(resp.pid());
    d_.events->Publish(c->ns, kTopicTaskStart, e);
  } else {
    events::TaskExecStarted e;
    e.set_container_id(c->id);
    e.set_exec_id(req.exec_id());
    e.set_pid(resp.pid());
    d_.events->Publish(c->ns, kTopicTaskExecStarted, e);
  }
  return resp;
}

void OciTaskService::Teardown(OciContainer& c) {
  if (absl::Status st = d_.engine->Delete(c.id, /*force=*/true); !st.ok()) {
    spdlog::warn("container={} op=runtime-delete error=\"{}\"", c.id, st.message());
  }
  if (d_.oom != nullptr) d_.oom->Unwatch(c.id);
  if (c.rootfs_mounted) {
    if (absl::Status st = UnmountAll(c.bundle + "/rootfs"); !st.ok()) {
      spdlog::warn("container={} op=umount error=\"{}\"", c.id, st.message());
    } else {
      c.rootfs_mounted = false;
    }
  }
  std::lock_guard<std::mutex> l(mu_);
  if (c.init.io) c.init.io->Close();
  for (auto& [eid, p] : c.execs) {
    if (p.io) p.io->Close();
  }
}

absl::StatusOr<task::DeleteResponse> OciTaskService::Delete(const task::DeleteRequest& req) {
  ASSIGN_OR_RETURN(auto c, Get(req.id()));
  std::lock_guard<std::mutex> op(c->op_mu);
  task::DeleteResponse resp;
  bool is_init = req.exec_id().empty();
  {
    std::lock_guard<std::mutex> l(mu_);
    OciProcess* p = c->Find(req.exec_id());
    if (p == nullptr) {
      return absl::NotFoundError(absl::StrFormat("process %s of container %s not found",
                                                 req.exec_id(), req.id()));
    }
    if (p->status == containerd::v1::types::RUNNING || p->status == containerd::v1::types::PAUSED) {
      return absl::FailedPreconditionError(
          absl::StrFormat("cannot delete running process %s of container %s",
                          is_init ? req.id() : req.exec_id(), req.id()));
    }
    resp.set_pid(static_cast<uint32_t>(p->identity.pid));
    resp.set_exit_status(p->exit.status);
    SetTime(p->exit.at, resp.mutable_exited_at());
    if (!is_init) {
      if (p->io) p->io->Close();
      d_.exits->Forget(p->identity.pid);
      c->execs.erase(req.exec_id());
    }
  }
  if (!is_init) {
    Persist();
    return resp;
  }
  Teardown(*c);
  {
    std::lock_guard<std::mutex> l(mu_);
    d_.exits->Forget(c->init.identity.pid);
    containers_.erase(c->id);
  }
  Persist();
  events::TaskDelete e;
  e.set_container_id(c->id);
  e.set_pid(resp.pid());
  e.set_exit_status(resp.exit_status());
  *e.mutable_exited_at() = resp.exited_at();
  d_.events->Publish(c->ns, kTopicTaskDelete, e);
  spdlog::info("sandbox={} container={} op=delete", d_.sandbox_id, c->id);
  return resp;
}

void OciTaskService::Wait(const task::WaitRequest& req, WaitCallback done) {
  auto c = Get(req.id());
  if (!c.ok()) return done(c.status());
  auto reply = [done](ExitInfo exit) {
    task::WaitResponse resp;
    resp.set_exit_status(exit.status);
    SetTime(exit.at, resp.mutable_exited_at());
    done(resp);
  };
  ExitInfo exit;
  {
    std::lock_guard<std::mutex> l(mu_);
    OciProcess* p = (*c)->Find(req.exec_id());
    if (p == nullptr) {
      return done(absl::NotFoundError(absl::StrFormat("process %s of container %s not found",
                                                      req.exec_id(), req.id())));
    }
    if (p->status != containerd::v1::types::STOPPED) {
      p->waiters.push_back(reply);
      return;
    }
    exit = p->exit;
  }
  reply(exit);
}

}  // namespace kuasar
