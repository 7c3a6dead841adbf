#include "runtime/base/logging.h"
#include "runtime/core/sandbox_controller.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/utsname.h>

#include <set>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/base/fault_point.h"
#include "runtime/base/id_check.h"
#include "runtime/base/status_macros.h"

namespace kuasar {
namespace {

// Exit status recorded when a sandbox's end was not observed (died while we were down,
// or a start that failed half way): 128 + SIGKILL, as if killed.
constexpr uint32_t kUnobservedExit = 137;

absl::Status NotFound(std::string_view id) {
  return absl::NotFoundError(absl::StrFormat("sandbox %s not found", id));
}

}  // namespace

PlatformInfo HostPlatform() {
  PlatformInfo p;
  utsname u{};
  ::uname(&u);
  std::string_view m = u.machine;
  if (m == "x86_64") {
    p.architecture = "amd64";
  } else if (m == "aarch64") {
    p.architecture = "arm64";
    p.variant = "v8";
  } else {
    p.architecture = std::string(m);
  }
  return p;
}

SandboxController::SandboxController(Config config, StateStore store,
                                     std::unique_ptr<SandboxBackend> backend,
                                     std::string sandboxes_dir)
    : config_(std::move(config)),
      store_(std::move(store)),
      backend_(std::move(backend)),
      sandboxes_dir_(std::move(sandboxes_dir)) {}

SandboxController::~SandboxController() = default;

absl::StatusOr<std::unique_ptr<SandboxController>> SandboxController::Create(
    const Config& config, std::unique_ptr<SandboxBackend> backend, EventPublisher* events,
    TaskEndpoints* task_endpoints) {
  const std::string& root = config.sandboxer.state_dir;
  RETURN_IF_ERROR(EnsurePrivateDirectory(root));
  std::string lock_path = absl::StrCat(root, "/lock");
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!lock) return ErrnoStatus(errno, "open", lock_path);
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("state dir ", root, " is in use by another sandboxer"));
    }
    return ErrnoStatus(errno, "flock", lock_path);
  }
  ASSIGN_OR_RETURN(StateStore store, StateStore::Open(absl::StrCat(root, "/records")));
  std::string sandboxes = absl::StrCat(root, "/sandboxes");
  RETURN_IF_ERROR(EnsurePrivateDirectory(sandboxes));
  std::unique_ptr<SandboxController> c(
      new SandboxController(config, std::move(store), std::move(backend), sandboxes));
  c->state_lock_ = std::move(lock);
  BackendContext ctx;
  ctx.config = &c->config_;
  ctx.sandboxes_dir = sandboxes;
  ctx.exit_sink = c.get();
  SandboxController* self = c.get();
  ctx.mutate_record = [self](std::string_view id,
                             const std::function<void(SandboxRecord&)>& fn) {
    return self->MutateRecord(id, fn);
  };
  ctx.events = events;
  ctx.task_endpoints = task_endpoints;
  RETURN_IF_ERROR(Annotate(c->backend_->Init(ctx),
                           absl::StrFormat("init %s backend", c->backend_->Kind())));
  return c;
}

std::shared_ptr<SandboxController::Entry> SandboxController::Find(std::string_view id) const {
  std::lock_guard<std::mutex> l(map_mu_);
  auto it = sandboxes_.find(id);
  return it == sandboxes_.end() ? nullptr : it->second;
}

absl::StatusOr<std::shared_ptr<SandboxController::Entry>> SandboxController::Get(
    std::string_view id) const {
  RETURN_IF_ERROR(ValidateId(id, "sandbox id"));
  std::shared_ptr<Entry> e = Find(id);
  if (!e) return NotFound(id);
  return e;
}

absl::Status SandboxController::Commit(Entry& entry, const SandboxRecord& record) {
  std::lock_guard<std::mutex> l(entry.mu);
  // An exit observed while the lifecycle call ran wins over the call's stale view.
  SandboxRecord merged = record;
  if (entry.record.state == SandboxState::kStopped && record.state == SandboxState::kReady) {
    merged.state = SandboxState::kStopped;
    merged.exit_status = entry.record.exit_status;
    merged.exited_at = entry.record.exited_at;
  }
  entry.record = std::move(merged);
  return store_.Save(entry.record.id, entry.record.ToJson());
}

void SandboxController::NotifyWaiters(Entry& entry) {
  std::vector<WaitCallback> waiters;
  SandboxExit exit;
  {
    std::lock_guard<std::mutex> l(entry.mu);
    if (entry.record.state != SandboxState::kStopped && !entry.removed) return;
    waiters.swap(entry.waiters);
    exit = {entry.record.exit_status, entry.record.exited_at};
  }
  for (auto& w : waiters) w(exit);
}

void SandboxController::MarkStopped(Entry& entry, uint32_t exit_status, absl::Time at) {
  {
    std::lock_guard<std::mutex> l(entry.mu);
    if (entry.record.state == SandboxState::kStopped) return;
    entry.record.state = SandboxState::kStopped;
    entry.record.exit_status = exit_status;
    entry.record.exited_at = at;
    if (absl::Status st = store_.Save(entry.record.id, entry.record.ToJson()); !st.ok()) {
      spdlog::error("sandbox={} op=persist-exit error=\"{}\"", entry.record.id, st.message());
    }
  }
  NotifyWaiters(entry);
}

void SandboxController::OnSandboxExit(std::string_view id, uint32_t exit_status, absl::Time at) {
  std::shared_ptr<Entry> e = Find(id);
  if (!e) return;
  spdlog::info("sandbox={} op=exit status={}", id, exit_status);
  MarkStopped(*e, exit_status, at);
}

absl::Status SandboxController::CreateSandbox(const CreateSandboxRequest& req) {
  RETURN_IF_ERROR(ValidateId(req.id, "sandbox id"));
  auto entry = std::make_shared<Entry>();
  {
    std::lock_guard<std::mutex> l(map_mu_);
    auto [it, inserted] = sandboxes_.emplace(req.id, entry);
    if (!inserted) {
      return absl::AlreadyExistsError(absl::StrCat("sandbox ", req.id, " already exists"));
    }
  }
  std::lock_guard<std::mutex> op(entry->op_mu);
  absl::Time t0 = absl::Now();
  SandboxRecord rec;
  rec.id = req.id;
  rec.sandboxer = req.sandboxer;
  rec.state = SandboxState::kCreating;
  rec.netns_path = req.netns_path;
  rec.rootfs = req.rootfs;
  rec.annotations = req.annotations;
  rec.labels = req.labels;
  rec.spec_type_url = req.spec_type_url;
  rec.spec_json = req.spec_json;
  rec.options_type_url = req.options_type_url;
  rec.options_bytes = req.options_bytes;
  rec.task_version = static_cast<uint32_t>(config_.containerd.task_api_version);
  rec.created_at = t0;

  auto fail = [&](absl::Status st) {
    if (absl::Status c = backend_->Cleanup(rec); !c.ok()) {
      spdlog::error("sandbox={} op=create-cleanup error=\"{}\"", req.id, c.message());
    }
    (void)store_.Remove(req.id);
    std::lock_guard<std::mutex> l(map_mu_);
    sandboxes_.erase(req.id);
    spdlog::warn("sandbox={} op=create error=\"{}\"", req.id, st.message());
    return Annotate(st, absl::StrCat("create sandbox ", req.id));
  };
  // The record goes to disk before any resource exists, so a crash from here on is
  // found by Recover and cleaned.
  if (absl::Status st = Commit(*entry, rec); !st.ok()) return fail(st);
  KUASAR_FAULT_POINT("create.after_record");
  if (absl::Status st = backend_->Create(rec); !st.ok()) return fail(st);
  KUASAR_FAULT_POINT("create.after_backend");
  rec.state = SandboxState::kCreated;
  if (absl::Status st = Commit(*entry, rec); !st.ok()) return fail(st);
  spdlog::info("sandbox={} op=create ms={:.3f}", req.id, absl::ToDoubleMilliseconds(absl::Now() - t0));
  return absl::OkStatus();
}

absl::StatusOr<StartSandboxResult> SandboxController::StartSandbox(std::string_view id) {
  ASSIGN_OR_RETURN(auto entry, Get(id));
  std::lock_guard<std::mutex> op(entry->op_mu);
  absl::Time t0 = absl::Now();
  SandboxRecord rec;
  {
    std::lock_guard<std::mutex> l(entry->mu);
    if (entry->removed) return NotFound(id);
    rec = entry->record;
  }
  if (rec.state == SandboxState::kReady) {
    return absl::FailedPreconditionError(absl::StrFormat("sandbox %s is already started", id));
  }
  if (rec.state != SandboxState::kCreated) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "sandbox %s cannot start from state %s", id, SandboxStateName(rec.state)));
  }
  rec.state = SandboxState::kStarting;
  RETURN_IF_ERROR(Commit(*entry, rec));
  KUASAR_FAULT_POINT("start.after_record");
  if (absl::Status st = backend_->Start(rec); !st.ok()) {
    // Kill whatever came up; containerd will Shutdown the sandbox next.
    (void)backend_->Stop(rec, absl::ZeroDuration());
    rec.state = SandboxState::kStopped;
    rec.exit_status = kUnobservedExit;
    rec.exited_at = absl::Now();
    (void)Commit(*entry, rec);
    NotifyWaiters(*entry);
    spdlog::warn("sandbox={} op=start error=\"{}\"", id, st.message());
    return Annotate(st, absl::StrFormat("start sandbox %s", id));
  }
  KUASAR_FAULT_POINT("start.after_backend");
  rec.state = SandboxState::kReady;
  rec.started_at = absl::Now();
  RETURN_IF_ERROR(Commit(*entry, rec));
  NotifyWaiters(*entry);  // in case it died already
  spdlog::info("sandbox={} op=start pid={} ms={:.3f}", id, rec.pid,
               absl::ToDoubleMilliseconds(absl::Now() - t0));
  return StartSandboxResult{rec.pid, rec.created_at, rec.task_address, rec.task_version,
                            rec.labels};
}

absl::StatusOr<PlatformInfo> SandboxController::Platform(std::string_view id) const {
  // The platform is the sandboxer's, not one sandbox's (containerd's own podsandbox
  // controller ignores the id too), so it answers before Create and as a health check.
  if (!id.empty()) RETURN_IF_ERROR(ValidateId(id, "sandbox id"));
  return backend_->Platform();
}

absl::Status SandboxController::StopSandbox(std::string_view id, absl::Duration timeout) {
  ASSIGN_OR_RETURN(auto entry, Get(id));
  std::lock_guard<std::mutex> op(entry->op_mu);
  SandboxRecord rec;
  {
    std::lock_guard<std::mutex> l(entry->mu);
    if (entry->removed) return NotFound(id);
    rec = entry->record;
  }
  if (rec.state == SandboxState::kStopped) return absl::OkStatus();  // idempotent
  if (rec.state == SandboxState::kCreated) {
    // Never started: nothing runs, but Wait must still get an answer.
    MarkStopped(*entry, 0, absl::Now());
    return absl::OkStatus();
  }
  rec.state = SandboxState::kStopping;
  RETURN_IF_ERROR(Commit(*entry, rec));
  KUASAR_FAULT_POINT("stop.after_record");
  RETURN_IF_ERROR(Annotate(backend_->Stop(rec, timeout), absl::StrFormat("stop sandbox %s", id)));
  KUASAR_FAULT_POINT("stop.after_backend");
  {
    std::lock_guard<std::mutex> l(entry->mu);
    // The backend may have reported the exit (with its real status) meanwhile.
    if (entry->record.state == SandboxState::kStopped) {
      rec.exit_status = entry->record.exit_status;
      rec.exited_at = entry->record.exited_at;
    } else {
      rec.exited_at = absl::Now();
    }
  }
  rec.state = SandboxState::kStopped;
  RETURN_IF_ERROR(Commit(*entry, rec));
  NotifyWaiters(*entry);
  spdlog::info("sandbox={} op=stop status={}", id, rec.exit_status);
  return absl::OkStatus();
}

void SandboxController::WaitSandbox(std::string_view id, WaitCallback done) {
  auto entry = Get(id);
  if (!entry.ok()) return done(entry.status());
  {
    std::lock_guard<std::mutex> l((*entry)->mu);
    if ((*entry)->record.state != SandboxState::kStopped && !(*entry)->removed) {
      (*entry)->waiters.push_back(std::move(done));
      return;
    }
  }
  SandboxRecord rec;
  {
    std::lock_guard<std::mutex> l((*entry)->mu);
    rec = (*entry)->record;
  }
  done(SandboxExit{rec.exit_status, rec.exited_at});
}

absl::StatusOr<SandboxStatusInfo> SandboxController::Status(std::string_view id,
                                                            bool verbose) const {
  ASSIGN_OR_RETURN(auto entry, Get(id));
  SandboxRecord rec;
  {
    std::lock_guard<std::mutex> l(entry->mu);
    rec = entry->record;
  }
  SandboxStatusInfo s;
  s.id = rec.id;
  s.pid = rec.pid;
  s.state = rec.state;
  s.created_at = rec.created_at;
  s.exited_at = rec.exited_at;
  s.address = rec.task_address;
  s.version = rec.task_version;
  s.info["kuasar.state"] = std::string(SandboxStateName(rec.state));
  s.info["kuasar.kind"] = std::string(backend_->Kind());
  backend_->DescribeStatus(rec, verbose, &s.info);
  return s;
}

absl::Status SandboxController::ShutdownSandbox(std::string_view id) {
  ASSIGN_OR_RETURN(auto entry, Get(id));
  std::lock_guard<std::mutex> op(entry->op_mu);
  SandboxRecord rec;
  {
    std::lock_guard<std::mutex> l(entry->mu);
    if (entry->removed) return absl::OkStatus();
    rec = entry->record;
  }
  if (rec.state != SandboxState::kStopped && rec.state != SandboxState::kCreated) {
    RETURN_IF_ERROR(Annotate(backend_->Stop(rec, absl::ZeroDuration()),
                             absl::StrFormat("shutdown sandbox %s", id)));
    MarkStopped(*entry, kUnobservedExit, absl::Now());
  }
  KUASAR_FAULT_POINT("shutdown.after_stop");
  RETURN_IF_ERROR(Annotate(backend_->Cleanup(rec), absl::StrFormat("shutdown sandbox %s", id)));
  KUASAR_FAULT_POINT("shutdown.after_cleanup");
  RETURN_IF_ERROR(store_.Remove(id));
  {
    std::lock_guard<std::mutex> l(entry->mu);
    entry->removed = true;
  }
  {
    std::lock_guard<std::mutex> l(map_mu_);
    sandboxes_.erase(std::string(id));
  }
  NotifyWaiters(*entry);
  spdlog::info("sandbox={} op=shutdown", id);
  return absl::OkStatus();
}

absl::StatusOr<MetricSample> SandboxController::Metrics(std::string_view id) const {
  ASSIGN_OR_RETURN(SandboxRecord rec, GetRecord(id));
  if (rec.state != SandboxState::kReady) {
    return absl::FailedPreconditionError(absl::StrFormat("sandbox %s is not running", id));
  }
  return backend_->Metrics(rec);
}

absl::Status SandboxController::UpdateSandbox(std::string_view id,
                                              const std::map<std::string, std::string>& labels,
                                              const std::vector<std::string>& fields) {
  return MutateRecord(id, [&](SandboxRecord& rec) {
    for (const std::string& f : fields) {
      if (f == "labels") rec.labels = labels;
    }
  });
}

absl::Status SandboxController::MutateRecord(std::string_view id,
                                             const std::function<void(SandboxRecord&)>& fn) {
  ASSIGN_OR_RETURN(auto entry, Get(id));
  std::lock_guard<std::mutex> l(entry->mu);
  if (entry->removed) return NotFound(id);
  fn(entry->record);
  return store_.Save(entry->record.id, entry->record.ToJson());
}

absl::StatusOr<SandboxRecord> SandboxController::GetRecord(std::string_view id) const {
  ASSIGN_OR_RETURN(auto entry, Get(id));
  std::lock_guard<std::mutex> l(entry->mu);
  if (entry->removed) return NotFound(id);
  return entry->record;
}

std::vector<std::string> SandboxController::ListIds() const {
  std::lock_guard<std::mutex> l(map_mu_);
  std::vector<std::string> ids;
  for (const auto& [id, e] : sandboxes_) ids.push_back(id);
  return ids;
}

absl::StatusOr<RecoveryReport> SandboxController::Recover() {
  RecoveryReport report;
  ASSIGN_OR_RETURN(StateStore::LoadResult loaded, store_.LoadAll());
  report.quarantined = static_cast<int>(loaded.quarantined.size());
  std::set<std::string> known;
  for (StateStore::Entry& e : loaded.entries) {
    absl::StatusOr<SandboxRecord> rec = SandboxRecord::FromJson(e.doc);
    if (!rec.ok() || rec->id != e.id) {
      spdlog::error("sandbox={} op=recover error=\"{}\"", e.id,
                    rec.ok() ? "record id does not match its file name" : rec.status().message());
      RETURN_IF_ERROR(store_.Quarantine(e.id));
      ++report.quarantined;
      continue;
    }
    known.insert(e.id);
    auto entry = std::make_shared<Entry>();
    switch (rec->state) {
      case SandboxState::kCreating:
        // Died mid-create: containerd got an error (or nothing), so make it fully gone.
        (void)backend_->Cleanup(*rec);
        (void)store_.Remove(e.id);
        known.erase(e.id);
        ++report.cleaned_up;
        spdlog::info("sandbox={} op=recover outcome=removed-half-created", e.id);
        continue;
      case SandboxState::kStarting:
      case SandboxState::kStopping:
        (void)backend_->Stop(*rec, absl::ZeroDuration());
        rec->state = SandboxState::kStopped;
        rec->exit_status = kUnobservedExit;
        rec->exited_at = absl::Now();
        ++report.recovered_stopped;
        break;
      case SandboxState::kReady:
        if (absl::Status st = backend_->Recover(*rec); !st.ok()) {
          spdlog::info("sandbox={} op=recover outcome=exited-while-down reason=\"{}\"", e.id,
                       st.message());
          (void)backend_->Stop(*rec, absl::ZeroDuration());
          rec->state = SandboxState::kStopped;
          if (rec->exited_at == absl::UnixEpoch()) {
            rec->exit_status = kUnobservedExit;
            rec->exited_at = absl::Now();
          }
          ++report.recovered_stopped;
        } else {
          ++report.recovered_running;
        }
        break;
      case SandboxState::kCreated:
      case SandboxState::kStopped:
        ++report.recovered_stopped;
        break;
    }
    entry->record = std::move(*rec);
    RETURN_IF_ERROR(store_.Save(e.id, entry->record.ToJson()));
    std::lock_guard<std::mutex> l(map_mu_);
    sandboxes_.emplace(e.id, std::move(entry));
  }
  // Directories without a record are leftovers of a crash after the record was removed.
  if (DIR* d = ::opendir(sandboxes_dir_.c_str())) {
    std::vector<std::string> orphans;
    while (dirent* de = ::readdir(d)) {
      std::string name = de->d_name;
      if (name == "." || name == ".." || known.contains(name)) continue;
      if (ValidateId(name).ok()) orphans.push_back(name);
    }
    ::closedir(d);
    for (const std::string& id : orphans) {
      SandboxRecord ghost;
      ghost.id = id;
      ghost.state = SandboxState::kStopped;
      (void)backend_->Cleanup(ghost);
      ++report.cleaned_up;
      spdlog::info("sandbox={} op=recover outcome=removed-orphan-dir", id);
    }
  }
  spdlog::info("op=recover running={} stopped={} cleaned={} quarantined={}",
               report.recovered_running, report.recovered_stopped, report.cleaned_up,
               report.quarantined);
  return report;
}

}  // namespace kuasar
