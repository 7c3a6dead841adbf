#include "runtime/sandboxers/runc/holder_pod_backend.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "runtime/base/fault_point.h"
#include "runtime/base/id_check.h"
#include "runtime/base/logging.h"
#include "runtime/base/process_identity.h"
#include "runtime/base/socket_path.h"
#include "runtime/base/status_macros.h"
#include "runtime/core/json_parked_calls.h"
#include "runtime/core/pod_settings.h"
#include "runtime/oci/cgroup.h"
#include "runtime/oci/oci_task_service.h"
#include "runtime/sandboxers/runc/pod_files.h"
#include "runtime/sandboxers/runc/pod_holder.h"

namespace kuasar {
namespace {

constexpr uint32_t kKilled = 137;
const std::vector<std::string> kSpawnEnv = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};

nlohmann::json IdentityJson(const ProcessIdentity& p) {
  return {{"pid", p.pid}, {"start_time", p.start_time}};
}
ProcessIdentity IdentityFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return {};
  return {j.value("pid", 0), j.value("start_time", uint64_t{0})};
}

void KillAndWait(const ProcessIdentity& p, absl::Duration timeout) {
  if (p.pid <= 0 || !IsSameProcessAlive(p)) return;
  absl::StatusOr<UniqueFd> fd = OpenPidfd(p);
  if (!fd.ok()) return;
  ::syscall(SYS_pidfd_send_signal, fd->get(), SIGTERM, nullptr, 0);
  absl::Time deadline = absl::Now() + timeout;
  while (IsSameProcessAlive(p) && absl::Now() < deadline) ::usleep(5000);
  if (IsSameProcessAlive(p)) ::syscall(SYS_pidfd_send_signal, fd->get(), SIGKILL, nullptr, 0);
}

}  // namespace

std::string BesideExecutable(std::string_view name) {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return (ec ? std::filesystem::path("/usr/local/bin") : exe.parent_path()) / std::string(name);
}

absl::Status ParseHolderPodKeys(TomlSection& s, HolderPodConfig* c) {
  RETURN_IF_ERROR(s.Get("holder", &c->holder));
  RETURN_IF_ERROR(s.Get("pod_cgroup_parent", &c->pod_cgroup_parent));
  RETURN_IF_ERROR(s.Get("holder_timeout_ms", &c->holder_timeout_ms, 100, 600000));
  if (c->pod_cgroup_parent.empty() || c->pod_cgroup_parent[0] != '/') {
    return s.Error("pod_cgroup_parent", "must be an absolute cgroup path");
  }
  return absl::OkStatus();
}

struct HolderPodBackend::Pod final : public ProcessSpawner {
  std::string id, dir, sockets, cgroup;
  PodSettings settings;
  HolderInfo holder;
  ExitRegistry exits;
  std::shared_ptr<HolderConnection> conn;
  std::shared_ptr<OciTaskService> tasks;
  std::shared_ptr<JsonParkedCalls> parked;  // containerd's Task.Wait calls, across restarts
  std::unique_ptr<boost::asio::posix::stream_descriptor> holder_watch;
  std::atomic<bool> stopping{false};
  bool serving = false;

  absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv,
                              std::array<int, 3> stdio) override {
    if (!conn) return absl::UnavailableError(absl::StrFormat("pod %s has no live holder", id));
    return conn->Spawn(argv, kSpawnEnv, stdio);
  }
  absl::StatusOr<int> WaitExit(pid_t pid, absl::Duration timeout) override {
    int status = 0;
    if (!exits.WaitFor(pid, timeout, &status)) {
      return absl::DeadlineExceededError(
          absl::StrFormat("pid %d did not exit in %s", pid, absl::FormatDuration(timeout)));
    }
    return status;
  }
};

HolderPodBackend::HolderPodBackend() : work_(boost::asio::make_work_guard(io_)) {}

HolderPodBackend::~HolderPodBackend() {
  {
    std::lock_guard<std::mutex> l(mu_);
    // Parked calls stay recorded: the daemon going down must not unpark them.
    for (auto& [id, pod] : pods_) {
      if (pod->parked) pod->parked->Freeze();
    }
    for (auto& [id, pod] : pods_) {
      if (pod->conn) pod->conn->Close();
      if (ctx_.task_endpoints && pod->serving)
        ctx_.task_endpoints->Stop(pod->sockets + "/task.sock");
    }
    pods_.clear();
  }
  work_.reset();
  io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
  blocking_.join();
}

absl::Status HolderPodBackend::Init(const BackendContext& context) {
  ctx_ = context;
  kind_ = std::string(Kind());
  fault_after_holder_ = kind_ + ".start.after_holder";
  ASSIGN_OR_RETURN(Setup setup, Configure(context));
  cfg_ = std::move(setup.pod);
  engine_ = std::move(setup.engine);
  if (::access(cfg_.holder.c_str(), X_OK) != 0) {
    return absl::NotFoundError(
        absl::StrFormat("kuasar-holder not found at %s (set [%s] holder)", cfg_.holder, kind_));
  }
  oom_ = std::make_unique<OomWatcher>(io_);
  io_thread_ = std::thread([this] { io_.run(); });
  spdlog::info("backend={} runtime={} holder={}", kind_, engine_->Name(), cfg_.holder);
  return absl::OkStatus();
}

std::string HolderPodBackend::SandboxDir(const std::string& id) const {
  return ctx_.sandboxes_dir + "/" + id;
}

std::string HolderPodBackend::PodCgroupPath(const SandboxRecord& rec) const {
  PodSettings settings = PodSettings::FromJson(rec.backend.value("pod", nlohmann::json::object()));
  std::string parent =
      settings.cgroup_parent.empty() ? cfg_.pod_cgroup_parent : settings.cgroup_parent;
  return parent + "/kuasar-" + rec.id;
}

std::string HolderPodBackend::SocketDir(const std::string& id) const {
  return SocketDirFor(ctx_.config->sandboxer.state_dir, id);
}

std::shared_ptr<HolderPodBackend::Pod> HolderPodBackend::FindPod(const std::string& id) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = pods_.find(id);
  return it == pods_.end() ? nullptr : it->second;
}

absl::Status HolderPodBackend::Create(SandboxRecord& rec) {
  ASSIGN_OR_RETURN(std::string dir, PathUnder(ctx_.sandboxes_dir, rec.id, "sandbox id"));
  std::string sockets = SocketDir(rec.id);
  RETURN_IF_ERROR(CheckSocketDirFits(sockets, std::string_view("con00000.sock").size()));
  ASSIGN_OR_RETURN(PodSettings settings,
                   DecodePodSettings(rec.options_type_url, rec.options_bytes));
  RETURN_IF_ERROR(EnsurePrivateDirectory(dir));
  RETURN_IF_ERROR(EnsurePrivateDirectory(ctx_.config->sandboxer.state_dir + "/s"));
  RETURN_IF_ERROR(EnsurePrivateDirectory(sockets));
  ASSIGN_OR_RETURN(PodFiles files, WritePodFiles(settings, dir));
  rec.backend["pod"] = settings.ToJson();
  rec.backend["files"] = {{"hostname", files.hostname},
                          {"hosts", files.hosts},
                          {"resolv_conf", files.resolv_conf},
                          {"shm", files.shm}};
  return absl::OkStatus();
}

absl::Status HolderPodBackend::Start(SandboxRecord& rec) {
  std::string dir = SandboxDir(rec.id);
  PodSettings settings = PodSettings::FromJson(rec.backend.value("pod", nlohmann::json::object()));
  HolderOptions ho;
  ho.holder_binary = cfg_.holder;
  ho.dir = dir;
  ho.socket_dir = SocketDir(rec.id);
  ho.netns_path = settings.host_network ? "" : rec.netns_path;
  ho.new_ipc = !settings.host_ipc;
  ho.new_uts = !settings.host_network;
  ho.hostname = settings.hostname;
  ho.new_pid = settings.shared_pid;
  ho.task_socket = SocketDir(rec.id) + "/task.sock";
  ho.sysctls = settings.sysctls;
  ho.timeout = absl::Milliseconds(cfg_.holder_timeout_ms);
  ASSIGN_OR_RETURN(HolderInfo info, StartHolder(ho));
  rec.backend["holder"] = IdentityJson(info.holder);
  rec.backend["sandbox_process"] = IdentityJson(info.sandbox);
  // Record the holder before anything else can fail or crash: recovery and cleanup find
  // it by this record (or, if we die before this write, by the holder's pid file).
  if (ctx_.mutate_record) {
    (void)ctx_.mutate_record(rec.id, [&](SandboxRecord& r) {
      r.backend["holder"] = rec.backend["holder"];
      r.backend["sandbox_process"] = rec.backend["sandbox_process"];
    });
  }
  KUASAR_FAULT_POINT(fault_after_holder_);
  rec.pid = static_cast<uint32_t>(info.sandbox.pid);

  std::string cgroup = PodCgroupPath(rec);
  if (absl::Status st = CreateCgroup(cgroup); st.ok()) {
    (void)AddProcess(cgroup, info.holder.pid);
    rec.backend["cgroup"] = cgroup;
  } else {
    spdlog::warn("sandbox={} op=pod-cgroup error=\"{}\"", rec.id, st.message());
  }
  ASSIGN_OR_RETURN(auto pod, Attach(rec, /*recovering=*/false));
  rec.task_address = "ttrpc+unix://" + SocketDir(rec.id) + "/task.sock";
  return OnPodStarted(rec, *pod);
}

absl::StatusOr<std::shared_ptr<HolderPodBackend::Pod>> HolderPodBackend::Attach(SandboxRecord& rec,
                                                                                bool recovering) {
  auto pod = std::make_shared<Pod>();
  pod->id = rec.id;
  pod->dir = SandboxDir(rec.id);
  pod->sockets = SocketDir(rec.id);
  pod->cgroup = rec.backend.value("cgroup", "");
  pod->settings = PodSettings::FromJson(rec.backend.value("pod", nlohmann::json::object()));
  pod->holder.holder = IdentityFromJson(rec.backend.value("holder", nlohmann::json()));
  pod->holder.sandbox = IdentityFromJson(rec.backend.value("sandbox_process", nlohmann::json()));
  bool holder_alive = IsSameProcessAlive(pod->holder.holder);
  nlohmann::json files = rec.backend.value("files", nlohmann::json::object());
  OciTaskServiceDeps deps;
  deps.sandbox_id = rec.id;
  deps.sandbox_dir = pod->dir;
  deps.socket_dir = pod->sockets;
  deps.io = &io_;
  deps.engine = engine_.get();
  deps.spawner = pod.get();
  deps.exits = &pod->exits;
  deps.events = ctx_.events;
  deps.oom = oom_.get();
  deps.pod_files = {files.value("hostname", ""), files.value("hosts", ""),
                    files.value("resolv_conf", ""), files.value("shm", "")};
  std::string id = rec.id;
  auto mutate = ctx_.mutate_record;
  deps.persist = [mutate, id](const nlohmann::json& containers) {
    if (!mutate) return;
    absl::Status st = mutate(id, [&](SandboxRecord& r) { r.backend["containers"] = containers; });
    if (!st.ok()) spdlog::debug("sandbox={} op=persist-containers error=\"{}\"", id, st.message());
  };
  pod->tasks = std::make_shared<OciTaskService>(std::move(deps));
  // The holder owns the task socket; the service is registered before the holder is
  // reached, because the holder hands over containerd's connections at once.
  std::string key = pod->sockets + "/task.sock";
  pod->parked = std::make_shared<JsonParkedCalls>(
      rec.backend.value("parked", nlohmann::json::object()),
      [mutate, id](const nlohmann::json& doc) {
        if (!mutate) return;
        (void)mutate(id, [&](SandboxRecord& r) { r.backend["parked"] = doc; });
      },
      [this](std::function<void()> fn) { boost::asio::post(blocking_, std::move(fn)); });
  if (ctx_.task_endpoints != nullptr) {
    RETURN_IF_ERROR(ctx_.task_endpoints->Register(key, pod->tasks, pod->parked));
    pod->serving = true;
  }
  // containerd's connections the holder hands over are only served once the containers
  // are recovered: a call served before (a replayed Wait) would find no container and
  // containerd would mark a running one exited. Until then they wait here.
  TaskEndpoints* endpoints = ctx_.task_endpoints;
  std::string sid = rec.id;
  auto adopt = [endpoints, key, sid](uint32_t conn_id, UniqueFd fd) {
    if (endpoints == nullptr) return;
    if (absl::Status st = endpoints->Adopt(key, std::move(fd), std::to_string(conn_id)); !st.ok()) {
      spdlog::warn("sandbox={} op=adopt-task-conn id={} error=\"{}\"", sid, conn_id,
                   st.message());
    }
  };
  struct HeldConnections {
    std::mutex mu;
    bool open = false;
    std::vector<std::pair<uint32_t, UniqueFd>> fds;
  };
  auto held = std::make_shared<HeldConnections>();
  held->open = !recovering;
  if (holder_alive) {
    auto conn = HolderConnection::Connect(
        io_, HolderSocketPath(pod->sockets), &pod->exits, nullptr,
        [held, adopt](uint32_t conn_id, UniqueFd fd) {
          {
            std::lock_guard<std::mutex> l(held->mu);
            if (!held->open) {
              held->fds.emplace_back(conn_id, std::move(fd));
              return;
            }
          }
          adopt(conn_id, std::move(fd));
        });
    if (!conn.ok() && !recovering) {
      if (pod->serving) ctx_.task_endpoints->Stop(key);
      return conn.status();
    }
    if (conn.ok()) pod->conn = *conn;
  }
  if (recovering) {
    // Connected first, journal second: an exit is either in the journal or reported live.
    RETURN_IF_ERROR(pod->tasks->Recover(rec.backend.value("containers", nlohmann::json::object()),
                                        ReadHolderJournal(pod->dir)));
    rec.backend["containers"] = pod->tasks->ContainersJson();
    std::vector<std::pair<uint32_t, UniqueFd>> waiting;
    {
      std::lock_guard<std::mutex> l(held->mu);
      held->open = true;
      waiting.swap(held->fds);
    }
    for (auto& [conn_id, fd] : waiting) adopt(conn_id, std::move(fd));
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    pods_[rec.id] = pod;
  }
  if (holder_alive) WatchHolder(pod);
  return pod;
}

void HolderPodBackend::WatchHolder(const std::shared_ptr<Pod>& pod) {
  absl::StatusOr<UniqueFd> fd = OpenPidfd(pod->holder.holder);
  if (!fd.ok()) {
    boost::asio::post(blocking_, [this, pod] { OnHolderExit(pod); });
    return;
  }
  pod->holder_watch = std::make_unique<boost::asio::posix::stream_descriptor>(io_, fd->Release());
  std::weak_ptr<Pod> weak = pod;
  pod->holder_watch->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                                [this, weak](const boost::system::error_code& ec) {
                                  auto pod = weak.lock();
                                  if (ec || !pod) return;
                                  boost::asio::post(blocking_, [this, pod] { OnHolderExit(pod); });
                                });
}

void HolderPodBackend::OnHolderExit(const std::shared_ptr<Pod>& pod) {
  if (pod->stopping.exchange(true)) return;  // a Stop is taking it down
  spdlog::warn("sandbox={} op=holder-exit unexpected=true", pod->id);
  // Nothing reaps the containers any more: kill them and report them gone.
  pod->tasks->KillAll();
  pod->tasks->AbandonAll(kKilled);
  if (ctx_.exit_sink) ctx_.exit_sink->OnSandboxExit(pod->id, kKilled, absl::Now());
}

absl::Status HolderPodBackend::Stop(SandboxRecord& rec, absl::Duration timeout) {
  std::shared_ptr<Pod> pod = FindPod(rec.id);
  absl::Time deadline = absl::Now() + std::max(timeout, absl::Seconds(1));
  if (pod) {
    pod->stopping = true;
    pod->tasks->KillAll();
    // The holder reports the containers' exits; give them a moment to arrive.
    while (!pod->tasks->AllStopped() && absl::Now() < deadline) ::usleep(5000);
    pod->tasks->AbandonAll(kKilled);
  }
  OnPodStopping(rec);
  ProcessIdentity holder = IdentityFromJson(rec.backend.value("holder", nlohmann::json()));
  if (holder.pid <= 0) {
    if (auto found = FindHolderByPidFile(SandboxDir(rec.id)); found.ok()) holder = *found;
  }
  bool forced = false;
  if (IsSameProcessAlive(holder)) {
    KillAndWait(holder, std::max(deadline - absl::Now(), absl::Milliseconds(100)));
    forced = IsSameProcessAlive(holder);
  }
  rec.exit_status = forced ? kKilled : 0;
  return absl::OkStatus();
}

absl::Status HolderPodBackend::Cleanup(SandboxRecord& rec) {
  std::string dir = SandboxDir(rec.id);
  std::shared_ptr<Pod> pod;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = pods_.find(rec.id);
    if (it != pods_.end()) {
      pod = it->second;
      pods_.erase(it);
    }
  }
  if (pod) {
    pod->stopping = true;
    pod->tasks->DeleteAll();
    if (ctx_.task_endpoints && pod->serving) ctx_.task_endpoints->Stop(pod->sockets + "/task.sock");
    if (pod->conn) pod->conn->Close();
    if (pod->holder_watch) {
      boost::asio::post(io_, [w = std::shared_ptr<boost::asio::posix::stream_descriptor>(
                                  std::move(pod->holder_watch))] {
        boost::system::error_code ec;
        w->close(ec);
      });
    }
  }
  OnPodStopping(rec);
  ProcessIdentity holder = IdentityFromJson(rec.backend.value("holder", nlohmann::json()));
  if (holder.pid <= 0) {
    // A crash between starting the holder and recording it: the holder's pid file says.
    if (auto found = FindHolderByPidFile(dir); found.ok()) holder = *found;
  }
  KillAndWait(holder, absl::Seconds(2));
  // Derived, not read from the record: a crash may have come before it was recorded.
  if (std::string cg = PodCgroupPath(rec); !cg.empty()) {
    if (absl::Status st = RemoveCgroup(cg); !st.ok() && !absl::IsNotFound(st)) {
      spdlog::warn("sandbox={} op=remove-cgroup error=\"{}\"", rec.id, st.message());
    }
  }
  if (ValidateId(rec.id).ok()) {
    RemovePodFiles(dir);
    std::error_code ec;
    std::filesystem::remove_all(SocketDir(rec.id), ec);
    std::filesystem::remove_all(dir, ec);
    if (ec) {
      return absl::InternalError(absl::StrFormat("remove %s: %s", dir, ec.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status HolderPodBackend::Recover(SandboxRecord& rec) {
  ProcessIdentity holder = IdentityFromJson(rec.backend.value("holder", nlohmann::json()));
  ASSIGN_OR_RETURN(auto pod, Attach(rec, /*recovering=*/true));
  if (!pod->conn) {
    return absl::NotFoundError(
        absl::StrFormat("holder %d of sandbox %s is gone", holder.pid, rec.id));
  }
  return absl::OkStatus();
}

absl::StatusOr<MetricSample> HolderPodBackend::Metrics(const SandboxRecord& rec) {
  std::string cg = rec.backend.value("cgroup", "");
  if (cg.empty()) {
    return absl::FailedPreconditionError(absl::StrFormat("sandbox %s has no pod cgroup", rec.id));
  }
  return ReadMetrics(cg);
}

void HolderPodBackend::DescribeStatus(const SandboxRecord& rec, bool verbose,
                                      std::map<std::string, std::string>* info) const {
  ProcessIdentity holder = IdentityFromJson(rec.backend.value("holder", nlohmann::json()));
  (*info)["kuasar.holder_pid"] = std::to_string(holder.pid);
  (*info)["kuasar.runtime"] = std::string(engine_ ? engine_->Name() : "");
  if (!verbose) return;
  std::shared_ptr<Pod> pod = FindPod(rec.id);
  nlohmann::json j = {{"pid", rec.pid},
                      {"processStatus", rec.state == SandboxState::kReady ? "running" : "stopped"},
                      {"netNamespaceClosed", false},
                      {"kuasar",
                       {{"holder_pid", holder.pid},
                        {"containers", pod ? pod->tasks->container_count() : 0},
                        {"pod", rec.backend.value("pod", nlohmann::json::object())}}}};
  (*info)["info"] = j.dump();
}

}  // namespace kuasar
