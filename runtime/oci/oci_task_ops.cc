// OciTaskService: the calls that inspect or signal existing processes, and recovery.
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "absl/strings/str_format.h"
#include "containerd/events/task.pb.h"
#include "runtime/base/child_process.h"
#include "runtime/base/id_check.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/oci/cgroup.h"
#include "runtime/oci/oci_spec.h"
#include "runtime/oci/oci_task_service.h"

namespace kuasar {
namespace {

namespace events = containerd::events;
using containerd::v1::types::CREATED;
using containerd::v1::types::PAUSED;
using containerd::v1::types::RUNNING;
using containerd::v1::types::STOPPED;

absl::Status ProcessNotFound(const std::string& id, const std::string& exec_id) {
  return absl::NotFoundError(
      absl::StrFormat("process %s of container %s not found", exec_id.empty() ? id : exec_id, id));
}

bool LooksLikeNotRunning(const absl::Status& st) {
  std::string_view m(st.message().data(), st.message().size());
  return m.find("not running") != std::string_view::npos ||
         m.find("No such process") != std::string_view::npos ||
         m.find("does not exist") != std::string_view::npos;
}

}  // namespace

absl::StatusOr<task::StateResponse> OciTaskService::State(const task::StateRequest& req) {
  ASSIGN_OR_RETURN(auto c, Get(req.id()));
  std::lock_guard<std::mutex> l(mu_);
  OciProcess* p = c->Find(req.exec_id());
  if (p == nullptr) return ProcessNotFound(req.id(), req.exec_id());
  task::StateResponse r;
  r.set_id(req.id());
  r.set_exec_id(req.exec_id());
  r.set_bundle(c->bundle);
  r.set_pid(static_cast<uint32_t>(p->identity.pid));
  r.set_status(p->status);
  r.set_stdin(p->stdin_path);
  r.set_stdout(p->stdout_path);
  r.set_stderr(p->stderr_path);
  r.set_terminal(p->terminal);
  r.set_exit_status(p->exit.status);
  if (p->status == STOPPED) {
    int64_t ns = absl::ToUnixNanos(p->exit.at);
    r.mutable_exited_at()->set_seconds(ns / 1000000000);
    r.mutable_exited_at()->set_nanos(static_cast<int32_t>(ns % 1000000000));
  }
  return r;
}

absl::StatusOr<task::PidsResponse> OciTaskService::Pids(const task::PidsRequest& req) {
  ASSIGN_OR_RETURN(auto c, Get(req.id()));
  ASSIGN_OR_RETURN(std::vector<pid_t> pids, d_.engine->Ps(c->id));
  task::PidsResponse r;
  for (pid_t pid : pids) r.add_processes()->set_pid(static_cast<uint32_t>(pid));
  return r;
}

absl::Status OciTaskService::Pause(const task::PauseRequest& req) {
  ASSIGN_OR_RETURN(auto c, Get(req.id()));
  std::lock_guard<std::mutex> op(c->op_mu);
  RETURN_IF_ERROR(d_.engine->Pause(c->id));
  {
    std::lock_guard<std::mutex> l(mu_);
    if (c->init.status == RUNNING) c->init.status = PAUSED;
  }
  Persist();
  events::TaskPaused e;
  e.set_container_id(c->id);
  d_.events->Publish(c->ns, kTopicTaskPaused, e);
  return absl::OkStatus();
}

absl::Status OciTaskService::Resume(const task::ResumeRequest& req) {
  ASSIGN_OR_RETURN(auto c, Get(req.id()));
  std::lock_guard<std::mutex> op(c->op_mu);
  RETURN_IF_ERROR(d_.engine->Resume(c->id));
  {
    std::lock_guard<std::mutex> l(mu_);
    if (c->init.status == PAUSED) c->init.status = RUNNING;
  }
  Persist();
  events::TaskResumed e;
  e.set_container_id(c->id);
  d_.events->Publish(c->ns, kTopicTaskResumed, e);
  return absl::OkStatus();
}

absl::Status OciTaskService::Kill(const task::KillRequest& req) {
  ASSIGN_OR_RETURN(auto c, Get(req.id()));
  if (req.signal() == 0 || req.signal() >= 65) {
    return absl::InvalidArgumentError(absl::StrFormat("invalid signal %d", req.signal()));
  }
  ProcessIdentity ident;
  bool is_init = req.exec_id().empty() || req.exec_id() == req.id();
  {
    std::lock_guard<std::mutex> l(mu_);
    OciProcess* p = c->Find(req.exec_id());
    if (p == nullptr) return ProcessNotFound(req.id(), req.exec_id());
    if (p->status == STOPPED && !(is_init && req.all())) {
      return absl::NotFoundError(absl::StrFormat("process %s already finished",
                                                 is_init ? req.id() : req.exec_id()));
    }
    if (!is_init && p->status == CREATED) {
      return absl::FailedPreconditionError(absl::StrFormat("exec %s is not started", req.exec_id()));
    }
    ident = p->identity;
  }
  if (is_init) {
    absl::Status st = d_.engine->Kill(c->id, static_cast<int>(req.signal()), req.all());
    if (!st.ok() && LooksLikeNotRunning(st)) {
      return absl::NotFoundError(absl::StrFormat("process %s already finished", req.id()));
    }
    return st;
  }
  // An exec'd process: signal exactly the process we started (pidfd), never a reused pid.
  absl::StatusOr<UniqueFd> pidfd = OpenPidfd(ident);
  if (!pidfd.ok()) {
    return absl::NotFoundError(absl::StrFormat("process %s already finished", req.exec_id()));
  }
  if (::syscall(SYS_pidfd_send_signal, pidfd->get(), static_cast<int>(req.signal()), nullptr, 0) != 0) {
    return ErrnoStatus(errno, "kill", absl::StrFormat("exec %s", req.exec_id()));
  }
  return absl::OkStatus();
}

absl::Status OciTaskService::Exec(const task::ExecProcessRequest& req) {
  ASSIGN_OR_RETURN(auto c, Get(req.id()));
  RETURN_IF_ERROR(ValidateId(req.exec_id(), "exec id"));
  bool terminal = false;
  RETURN_IF_ERROR(ValidateProcessJson(req.spec().value(), &terminal));
  if (terminal != req.terminal()) {
    return absl::InvalidArgumentError("terminal flag disagrees with the process spec");
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    if (c->init.status != RUNNING) {
      return absl::FailedPreconditionError(
          absl::StrFormat("container %s is not running", req.id()));
    }
    if (c->execs.contains(req.exec_id()) || req.exec_id() == req.id()) {
      return absl::AlreadyExistsError(
          absl::StrFormat("exec %s already exists in container %s", req.exec_id(), req.id()));
    }
    OciProcess p;
    p.exec_id = req.exec_id();
    p.stdin_path = req.stdin();
    p.stdout_path = req.stdout();
    p.stderr_path = req.stderr();
    p.terminal = terminal;
    p.process_json = req.spec().value();
    c->execs.emplace(req.exec_id(), std::move(p));
  }
  Persist();
  events::TaskExecAdded e;
  e.set_container_id(c->id);
  e.set_exec_id(req.exec_id());
  d_.events->Publish(c->ns, kTopicTaskExecAdded, e);
  return absl::OkStatus();
}

absl::Status OciTaskService::ResizePty(const task::ResizePtyRequest& req) {
  ASSIGN_OR_RETURN(auto c, Get(req.id()));
  std::lock_guard<std::mutex> l(mu_);
  OciProcess* p = c->Find(req.exec_id());
  if (p == nullptr) return ProcessNotFound(req.id(), req.exec_id());
  if (!p->terminal || !p->io) {
    return absl::FailedPreconditionError("process has no terminal");
  }
  return p->io->Resize(req.width(), req.height());
}

absl::Status OciTaskService::CloseIO(const task::CloseIORequest& req) {
  ASSIGN_OR_RETURN(auto c, Get(req.id()));
  std::lock_guard<std::mutex> l(mu_);
  OciProcess* p = c->Find(req.exec_id());
  if (p == nullptr) return ProcessNotFound(req.id(), req.exec_id());
  if (req.stdin() && p->io) p->io->CloseStdin();
  return absl::OkStatus();
}

absl::Status OciTaskService::Update(const task::UpdateTaskRequest& req) {
  ASSIGN_OR_RETURN(auto c, Get(req.id()));
  std::lock_guard<std::mutex> op(c->op_mu);
  return d_.engine->Update(c->id, req.resources().value(), d_.sandbox_dir);
}

absl::StatusOr<task::StatsResponse> OciTaskService::Stats(const task::StatsRequest& req) {
  ASSIGN_OR_RETURN(auto c, Get(req.id()));
  if (c->cgroups_path.empty()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("container %s has no cgroup to read", req.id()));
  }
  ASSIGN_OR_RETURN(MetricSample m, ReadMetrics(c->cgroups_path));
  task::StatsResponse r;
  r.mutable_stats()->set_type_url(m.type_url);
  r.mutable_stats()->set_value(m.value);
  return r;
}

absl::StatusOr<task::ConnectResponse> OciTaskService::Connect(const task::ConnectRequest& req) {
  task::ConnectResponse r;
  r.set_shim_pid(static_cast<uint32_t>(::getpid()));
  r.set_version("3");
  if (auto c = Find(req.id())) {
    std::lock_guard<std::mutex> l(mu_);
    r.set_task_pid(static_cast<uint32_t>(c->init.identity.pid));
  }
  return r;
}

absl::Status OciTaskService::Shutdown(const task::ShutdownRequest&) {
  // A shim would exit here; the sandboxer serves other pods and stays.
  return absl::OkStatus();
}

void OciTaskService::KillAll() {
  std::vector<std::shared_ptr<OciContainer>> all;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [id, c] : containers_) all.push_back(c);
  }
  for (auto& c : all) {
    absl::Status st = d_.engine->Kill(c->id, SIGKILL, /*all=*/true);
    if (!st.ok() && !LooksLikeNotRunning(st)) {
      spdlog::warn("container={} op=kill-all error=\"{}\"", c->id, st.message());
    }
  }
}

void OciTaskService::DeleteAll() {
  std::vector<std::shared_ptr<OciContainer>> all;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [id, c] : containers_) all.push_back(c);
  }
  for (auto& c : all) {
    std::lock_guard<std::mutex> op(c->op_mu);
    Teardown(*c);
    absl::Time now = absl::Now();
    // Processes whose exit will never be reported (the holder is going away) end here.
    FinishExit(c, "", 137, now);
    for (auto& [eid, p] : c->execs) FinishExit(c, eid, 137, now);
    std::lock_guard<std::mutex> l(mu_);
    containers_.erase(c->id);
  }
  Persist();
}

void OciTaskService::AbandonAll(uint32_t code) {
  std::vector<std::pair<std::shared_ptr<OciContainer>, std::string>> open;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [id, c] : containers_) {
      if (c->init.status != STOPPED) open.push_back({c, ""});
      for (auto& [eid, p] : c->execs) {
        if (p.status != STOPPED && p.status != CREATED) open.push_back({c, eid});
      }
    }
  }
  absl::Time now = absl::Now();
  for (auto& [c, eid] : open) FinishExit(c, eid, code, now);
}

bool OciTaskService::AllStopped() const {
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [id, c] : containers_) {
    if (c->init.status == RUNNING || c->init.status == PAUSED) return false;
    for (const auto& [eid, p] : c->execs) {
      if (p.status == RUNNING || p.status == PAUSED) return false;
    }
  }
  return true;
}

absl::Status OciTaskService::Recover(const nlohmann::json& containers,
                                      const std::vector<JournaledExit>& journal) {
  std::map<pid_t, JournaledExit> exits;
  for (const JournaledExit& e : journal) exits[e.pid] = e;  // later entries win
  for (const auto& [id, cj] : containers.items()) {
    auto c = OciContainer::FromJson(cj);
    if (!c.ok()) {
      spdlog::error("sandbox={} container={} op=recover error=\"{}\"", d_.sandbox_id, id,
                    c.status().message());
      continue;
    }
    std::shared_ptr<OciContainer> sc(std::move(*c));
    {
      std::lock_guard<std::mutex> l(mu_);
      containers_[sc->id] = sc;
    }
    std::vector<std::pair<std::string, OciProcess*>> procs = {{"", &sc->init}};
    for (auto& [eid, p] : sc->execs) procs.push_back({eid, &p});
    for (auto& [eid, p] : procs) {
      if (p->status == STOPPED || p->identity.pid <= 0) continue;
      if (p->status == CREATED && !eid.empty()) continue;  // exec added, never started
      if (IsSameProcessAlive(p->identity)) {
        WatchExit(sc, eid, p->identity.pid);  // the holder reports it when it happens
        continue;
      }
      auto it = exits.find(p->identity.pid);
      if (it != exits.end()) {
        FinishExit(sc, eid, static_cast<uint32_t>(ExitCodeFromWaitStatus(it->second.wait_status)),
                   it->second.at);
      } else {
        spdlog::warn("sandbox={} container={} exec={} op=recover exit=unknown", d_.sandbox_id,
                     sc->id, eid);
        FinishExit(sc, eid, 255, absl::Now());
      }
    }
    if (d_.oom != nullptr && !sc->cgroups_path.empty() && sc->init.status != STOPPED) {
      std::string ns = sc->ns, cid = sc->id;
      EventPublisher* pub = d_.events;
      (void)d_.oom->Watch(cid, sc->cgroups_path, [pub, ns, cid] {
        events::TaskOOM e;
        e.set_container_id(cid);
        pub->Publish(ns, kTopicTaskOOM, e);
      });
    }
  }
  Persist();
  return absl::OkStatus();
}

}  // namespace kuasar
