#include "runtime/sandboxers/vmm/backend/vmm_backend.h"

#include <sys/stat.h>

#include <boost/asio/post.hpp>
#include <filesystem>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_format.h"
#include "runtime/base/fault_point.h"
#include "runtime/base/id_check.h"
#include "runtime/base/logging.h"
#include "runtime/base/socket_path.h"
#include "runtime/base/status_macros.h"
#include "runtime/core/pod_settings.h"
#include "runtime/core/toml_section.h"
#include "runtime/sandboxers/vmm/backend/agent_link.h"
#include "runtime/sandboxers/vmm/backend/guest_paths.h"
#include "runtime/sandboxers/vmm/backend/pod_network.h"
#include "runtime/sandboxers/vmm/backend/shared_bundle.h"
#include "runtime/sandboxers/vmm/bridge/task_bridge.h"

namespace kuasar {
namespace {

// Where the guest mounts the host's shared dir (9p/virtiofs tag "kuasar").
constexpr char kGuestSharedDir[] = "/run/kuasar/shared";

}  // namespace

absl::StatusOr<VmmConfig> ParseVmmConfig(const Config& config) {
  VmmConfig c;
  TomlSection top(config.root.get(), "", config.source), s(nullptr, "", "");
  RETURN_IF_ERROR(top.Sub("vmm", &s));
  RETURN_IF_ERROR(s.Get("agent_timeout_ms", &c.agent_timeout_ms, 100, 3600000));
  RETURN_IF_ERROR(s.Get("guest_sees_host_paths", &c.guest_sees_host_paths));
  c.mirror_network = !c.guest_sees_host_paths;
  RETURN_IF_ERROR(s.Get("mirror_network", &c.mirror_network));
  RETURN_IF_ERROR(s.CheckNoUnknownKeys());
  return c;
}

struct VmmBackend::Pod {
  std::string id, dir, sockets;
  std::unique_ptr<vmm::Hypervisor> vm;
  vmm::AgentChannel channel;
  // Rewrites containerd's host paths for the guest (the bridge's interceptor); null
  // when the guest sees host paths. Released on the io thread after the bridge closed.
  std::shared_ptr<GuestPaths> paths;
  std::shared_ptr<TaskBridge> bridge;
  std::unique_ptr<AgentClient> agent;
  std::atomic<bool> stopping{false};
};

VmmBackend::VmmBackend(HypervisorFactoryMaker maker)
    : maker_(std::move(maker)), work_(boost::asio::make_work_guard(io_)) {}

VmmBackend::~VmmBackend() {
  std::vector<std::shared_ptr<GuestPaths>> paths;  // the bridges use them until io stops
  {
    // Detach: the VMs keep running for a restarted sandboxer to recover.
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [id, pod] : pods_) {
      if (pod->paths) {
        pod->paths->Shutdown();
        paths.push_back(std::move(pod->paths));
      }
      if (pod->bridge) pod->bridge->Close();
    }
    pods_.clear();
  }
  factory_.reset();
  work_.reset();
  io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
}

absl::Status VmmBackend::Init(const BackendContext& context) {
  ctx_ = context;
  ASSIGN_OR_RETURN(cfg_, ParseVmmConfig(*context.config));
  ASSIGN_OR_RETURN(factory_, maker_(*context.config, io_));
  io_thread_ = std::thread([this] { io_.run(); });
  spdlog::info("backend=vmm hypervisor={} guest_sees_host_paths={}", factory_->Kind(),
               cfg_.guest_sees_host_paths);
  return absl::OkStatus();
}

std::string VmmBackend::SandboxDir(const std::string& id) const {
  return ctx_.sandboxes_dir + "/" + id;
}

std::shared_ptr<VmmBackend::Pod> VmmBackend::FindPod(const std::string& id) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = pods_.find(id);
  return it == pods_.end() ? nullptr : it->second;
}

absl::Status VmmBackend::Create(SandboxRecord& rec) {
  ASSIGN_OR_RETURN(std::string dir, PathUnder(ctx_.sandboxes_dir, rec.id, "sandbox id"));
  std::string sockets = SocketDirFor(ctx_.config->sandboxer.state_dir, rec.id);
  RETURN_IF_ERROR(CheckSocketDirFits(sockets, std::string_view("console.sock").size()));
  ASSIGN_OR_RETURN(PodSettings settings,
                   DecodePodSettings(rec.options_type_url, rec.options_bytes));
  RETURN_IF_ERROR(EnsurePrivateDirectory(dir));
  RETURN_IF_ERROR(EnsurePrivateDirectory(ctx_.config->sandboxer.state_dir + "/s"));
  RETURN_IF_ERROR(EnsurePrivateDirectory(sockets));
  if (!cfg_.guest_sees_host_paths) RETURN_IF_ERROR(EnsurePrivateDirectory(dir + "/shared"));
  rec.backend["pod"] = settings.ToJson();
  return absl::OkStatus();
}

absl::Status VmmBackend::Connect(const std::shared_ptr<Pod>& pod, SandboxRecord& rec,
                                 absl::Time deadline) {
  std::unique_ptr<ttrpc::Client> client;
  if (pod->channel.kind == vmm::AgentChannel::Kind::kSerialSocket) {
    // One stream to the agent: the bridge serves containerd and us on the task socket.
    ASSIGN_OR_RETURN(UniqueFd stream, DialAgent(pod->channel, deadline));
    std::string task_sock = pod->sockets + "/task.sock";
    ASSIGN_OR_RETURN(pod->bridge,
                     TaskBridge::Start(io_, std::move(stream), task_sock, pod->paths.get()));
    if (pod->paths) pod->paths->SetAgentSocket(task_sock);
    ASSIGN_OR_RETURN(client, ttrpc::Client::Connect(task_sock));
    rec.task_address = "ttrpc+unix://" + task_sock;
  } else {
    if (pod->paths) {
      spdlog::warn(
          "sandbox={} op=connect containerd reaches the agent directly: host paths in "
          "Task requests are not translated for the guest",
          pod->id);
    }
    ASSIGN_OR_RETURN(UniqueFd stream, DialAgent(pod->channel, deadline));
    ASSIGN_OR_RETURN(client, ttrpc::Client::FromFd(std::move(stream)));
    rec.task_address = "ttrpc+" + pod->channel.TaskAddress();
  }
  pod->agent = std::make_unique<AgentClient>(std::move(client));
  return pod->agent->WaitUntilReady(deadline).status();
}

absl::Status VmmBackend::Start(SandboxRecord& rec) {
  absl::Time deadline = absl::Now() + absl::Milliseconds(cfg_.agent_timeout_ms);
  PodSettings settings = PodSettings::FromJson(rec.backend.value("pod", nlohmann::json::object()));
  auto pod = std::make_shared<Pod>();
  pod->id = rec.id;
  pod->dir = SandboxDir(rec.id);
  pod->sockets = SocketDirFor(ctx_.config->sandboxer.state_dir, rec.id);
  vmm::VmConfig vc = factory_->DefaultVmConfig();
  vc.sandbox_id = rec.id;
  vc.state_dir = pod->dir;
  vc.socket_dir = pod->sockets;
  vc.netns_path = settings.host_network ? "" : rec.netns_path;
  if (!cfg_.guest_sees_host_paths) {
    // Shared propagation before virtiofsd starts: the rootfs mounts made below it later
    // must reach virtiofsd's mount namespace.
    RETURN_IF_ERROR(MakeSharedMountPoint(pod->dir + "/shared"));
    vc.shared_dir = vmm::SharedDir{pod->dir + "/shared"};
    pod->paths = std::make_shared<GuestPaths>(pod->dir + "/shared", kGuestSharedDir);
  }
  // A failed start leaves no mount behind (the record may stay until a Shutdown that
  // containerd does not always send after a failed Start).
  bool started = false;
  absl::Cleanup unmount_on_failure = [&] {
    if (started || cfg_.guest_sees_host_paths) return;
    if (absl::Status st = UnmountTree(pod->dir + "/shared"); !st.ok()) {
      spdlog::warn("sandbox={} op=start-undo error=\"{}\"", rec.id, st.message());
    }
  };

  agent::v1::SetupSandboxRequest setup;
  setup.set_sandbox_id(rec.id);
  setup.set_hostname(settings.hostname);
  for (const auto& s : settings.dns_servers) setup.add_dns_servers(s);
  for (const auto& s : settings.dns_searches) setup.add_dns_searches(s);
  for (const auto& s : settings.dns_options) setup.add_dns_options(s);
  setup.mutable_sysctls()->insert(settings.sysctls.begin(), settings.sysctls.end());
  if (!cfg_.guest_sees_host_paths) setup.set_shared_dir(kGuestSharedDir);

  if (cfg_.mirror_network && !vc.netns_path.empty()) {
    std::string tap = TapNameFor(rec.id);
    auto plan = MirrorIntoTap(vc.netns_path, tap);
    if (plan.ok()) {
      rec.backend["net"] = {{"tap", plan->tap}, {"interface", plan->host_interface}};
      vc.nets.push_back({"net0", plan->tap, plan->mac});
      auto* iface = setup.add_interfaces();
      iface->set_name("eth0");
      iface->set_mac(plan->mac);
      iface->set_mtu(plan->mtu);
      for (const auto& a : plan->addresses) *iface->add_addresses() = a;
      for (auto r : plan->routes) {
        r.set_device("eth0");
        *setup.add_routes() = r;
      }
    } else if (!absl::IsNotFound(plan.status())) {
      return plan.status();
    }
  }

  pod->vm = factory_->New();
  std::string id = rec.id;
  pod->vm->SetExitCallback([this, id](const vmm::VmExit& exit) { OnVmExit(id, exit); });
  RETURN_IF_ERROR(pod->vm->Prepare(vc));
  KUASAR_FAULT_POINT("vmm.start.before_launch");
  RETURN_IF_ERROR(pod->vm->Launch());
  {
    std::lock_guard<std::mutex> l(mu_);
    pods_[rec.id] = pod;
  }
  // Recorded before waiting for the guest: a crash from here on finds the VMM to stop.
  rec.backend["vm"] = pod->vm->PersistedState();
  if (ctx_.mutate_record) {
    (void)ctx_.mutate_record(rec.id, [&](SandboxRecord& r) { r.backend = rec.backend; });
  }
  KUASAR_FAULT_POINT("vmm.start.after_launch");
  ASSIGN_OR_RETURN(pod->channel, pod->vm->WaitReady(deadline));
  RETURN_IF_ERROR(Annotate(Connect(pod, rec, deadline), "reach the guest agent"));
  RETURN_IF_ERROR(Annotate(pod->agent->SetupSandbox(setup), "set up the guest"));
  KUASAR_FAULT_POINT("vmm.start.after_agent_setup");
  auto identity = pod->vm->Identity();
  rec.pid = identity ? static_cast<uint32_t>(identity->pid) : 0;
  rec.backend["vm"] = pod->vm->PersistedState();
  started = true;
  return absl::OkStatus();
}

void VmmBackend::OnVmExit(const std::string& id, const vmm::VmExit& exit) {
  std::shared_ptr<Pod> pod = FindPod(id);
  if (pod && pod->stopping) return;
  spdlog::warn("sandbox={} op=vm-exit reason={} status={}", id, exit.reason, exit.ExitStatus());
  if (ctx_.exit_sink) ctx_.exit_sink->OnSandboxExit(id, exit.ExitStatus(), exit.at);
}

void VmmBackend::KillDetachedVm(const SandboxRecord& rec) {
  if (!rec.backend.contains("vm")) return;
  auto vm = factory_->New();
  vm->SetExitCallback([](const vmm::VmExit&) {});
  if (vm->Recover(rec.backend["vm"]).ok()) (void)vm->Kill();
}

absl::Status VmmBackend::Stop(SandboxRecord& rec, absl::Duration timeout) {
  std::shared_ptr<Pod> pod = FindPod(rec.id);
  if (!pod || !pod->vm) {
    // Not attached: recovery stopping a sandbox the sandboxer died starting or stopping,
    // whose VM may still run.
    KillDetachedVm(rec);
    return absl::OkStatus();
  }
  pod->stopping = true;
  if (pod->agent) (void)pod->agent->Shutdown(std::min(timeout, absl::Seconds(2)));
  KUASAR_FAULT_POINT("vmm.stop.after_agent_shutdown");
  RETURN_IF_ERROR(pod->vm->Stop(std::max(timeout, absl::Seconds(1))));
  rec.exit_status = 0;
  return absl::OkStatus();
}

absl::Status VmmBackend::Cleanup(SandboxRecord& rec) {
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
    if (pod->paths) pod->paths->Shutdown();
    pod->agent.reset();
    if (pod->bridge) pod->bridge->Close();
    // After the bridge's own close (posted before): it calls the interceptor until then.
    if (pod->paths) boost::asio::post(io_, [paths = std::move(pod->paths)] {});
    if (pod->vm) (void)pod->vm->Kill();
  } else {
    KillDetachedVm(rec);  // not attached (a crash in Start): reattach just to stop it
  }
  KUASAR_FAULT_POINT("vmm.cleanup.after_vm_kill");
  if (rec.backend.contains("net")) {
    RemoveMirror(rec.netns_path, rec.backend["net"].value("tap", ""),
                 rec.backend["net"].value("interface", ""));
  }
  if (ValidateId(rec.id).ok()) {
    // Containers' rootfs and volume mounts below the shared dir go before anything is
    // deleted: removing through a mount would delete what it shows.
    RETURN_IF_ERROR(Annotate(UnmountTree(SandboxDir(rec.id) + "/shared"),
                             absl::StrFormat("sandbox %s: unmount the shared dir", rec.id)));
    std::error_code ec;
    std::filesystem::remove_all(SocketDirFor(ctx_.config->sandboxer.state_dir, rec.id), ec);
    std::filesystem::remove_all(SandboxDir(rec.id), ec);
    if (ec)
      return absl::InternalError(
          absl::StrFormat("remove %s: %s", SandboxDir(rec.id), ec.message()));
  }
  return absl::OkStatus();
}

absl::Status VmmBackend::Recover(SandboxRecord& rec) {
  if (!rec.backend.contains("vm")) return absl::NotFoundError("no VM was recorded");
  auto pod = std::make_shared<Pod>();
  pod->id = rec.id;
  pod->dir = SandboxDir(rec.id);
  pod->sockets = SocketDirFor(ctx_.config->sandboxer.state_dir, rec.id);
  if (!cfg_.guest_sees_host_paths) {
    pod->paths = std::make_shared<GuestPaths>(pod->dir + "/shared", kGuestSharedDir);
  }
  pod->vm = factory_->New();
  std::string id = rec.id;
  pod->vm->SetExitCallback([this, id](const vmm::VmExit& exit) { OnVmExit(id, exit); });
  RETURN_IF_ERROR(pod->vm->Recover(rec.backend["vm"]));
  pod->channel = pod->vm->agent_channel();
  {
    std::lock_guard<std::mutex> l(mu_);
    pods_[rec.id] = pod;
  }
  std::string address = rec.task_address;
  RETURN_IF_ERROR(Connect(pod, rec, absl::Now() + absl::Seconds(10)));
  rec.task_address = address;
  return absl::OkStatus();
}

absl::StatusOr<MetricSample> VmmBackend::Metrics(const SandboxRecord& rec) {
  return absl::UnimplementedError(
      absl::StrFormat("sandbox %s: VM pod metrics are not collected yet", rec.id));
}

void VmmBackend::DescribeStatus(const SandboxRecord& rec, bool verbose,
                                std::map<std::string, std::string>* info) const {
  std::shared_ptr<Pod> pod = FindPod(rec.id);
  (*info)["kuasar.hypervisor"] = factory_ ? std::string(factory_->Kind()) : "";
  if (pod && pod->vm) pod->vm->Describe(info);
  if (verbose) {
    nlohmann::json j = {
        {"pid", rec.pid},
        {"processStatus", rec.state == SandboxState::kReady ? "running" : "stopped"},
        {"kuasar", {{"vm", rec.backend.value("vm", nlohmann::json())}}}};
    (*info)["info"] = j.dump();
  }
}

}  // namespace kuasar
