#include "runtime/shim/vm_shim.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_format.h"
#include "containerd/task/v3/shim.pb.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/id_check.h"
#include "runtime/base/logging.h"
#include "runtime/base/process_identity.h"
#include "runtime/base/socket_path.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/backend/hypervisor_registry.h"
#include "runtime/sandboxers/vmm/backend/vmm_backend.h"

namespace kuasar::shim {
namespace {

constexpr char kTaskService[] = "containerd.task.v3.Task";
constexpr char kTaskServiceV2[] = "containerd.task.v2.Task";

bool IsTask(const std::string& service) {
  return service == kTaskService || service == kTaskServiceV2;
}

}  // namespace

VmShim::VmShim(Config config, ShimPaths paths)
    : config_(std::move(config)), paths_(std::move(paths)),
      work_(boost::asio::make_work_guard(io_)) {
  io_thread_ = std::thread([this] { io_.run(); });
}

VmShim::~VmShim() {
  if (bridge_) bridge_->Close();
  agent_.reset();
  vm_.reset();
  factory_.reset();
  work_.reset();
  io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
}

absl::Status VmShim::Boot(const BundleInfo& bundle) {
  id_ = bundle.sandbox_id;
  ASSIGN_OR_RETURN(VmmConfig vmm_cfg, ParseVmmConfig(config_));
  if (!vmm_cfg.guest_sees_host_paths) {
    return absl::FailedPreconditionError(
        "the vmm shim relays containerd's paths unchanged: it needs a guest that sees host "
        "paths ([vmm] guest_sees_host_paths = true, as on the fake VMM)");
  }
  absl::Time deadline = absl::Now() + absl::Milliseconds(vmm_cfg.agent_timeout_ms);
  ASSIGN_OR_RETURN(factory_, MakeHypervisorFactory(config_, io_));
  std::string dir = paths_.PodDir(id_);
  std::string sockets = SocketDirFor(config_.sandboxer.state_dir, id_);
  RETURN_IF_ERROR(EnsurePrivateDirectory(config_.sandboxer.state_dir));
  RETURN_IF_ERROR(EnsurePrivateDirectory(config_.sandboxer.state_dir + "/shim"));
  RETURN_IF_ERROR(EnsurePrivateDirectory(dir));
  RETURN_IF_ERROR(EnsurePrivateDirectory(config_.sandboxer.state_dir + "/s"));
  RETURN_IF_ERROR(EnsurePrivateDirectory(sockets));

  vmm::VmConfig vc = factory_->DefaultVmConfig();
  vc.sandbox_id = id_;
  vc.state_dir = dir;
  vc.socket_dir = sockets;
  vc.netns_path = bundle.netns_path;
  vm_ = factory_->New();
  vm_->SetExitCallback([this](const vmm::VmExit& exit) {
    spdlog::info("sandbox={} op=vm-exit reason={}", id_, exit.reason);
    Wake("the VM exited");
  });
  RETURN_IF_ERROR(vm_->Prepare(vc));
  RETURN_IF_ERROR(vm_->Launch());
  ASSIGN_OR_RETURN(ProcessIdentity self, IdentifyProcess(getpid()));
  nlohmann::json state = {{"vm", vm_->PersistedState()},
                          {"shim", {{"pid", self.pid}, {"start_time", self.start_time}}}};
  RETURN_IF_ERROR(WriteFileAtomically(dir + "/vm.json", state.dump()));
  ASSIGN_OR_RETURN(vmm::AgentChannel channel, vm_->WaitReady(deadline));
  ASSIGN_OR_RETURN(UniqueFd stream, DialAgent(channel, deadline));
  ASSIGN_OR_RETURN(bridge_, TaskBridge::Start(io_, std::move(stream), paths_.SocketPath(id_), this));
  bridge_->OnUpstreamClosed([this](const absl::Status&) { Wake("the agent channel closed"); });
  ASSIGN_OR_RETURN(auto client, ttrpc::Client::Connect(paths_.SocketPath(id_)));
  agent_ = std::make_unique<AgentClient>(std::move(client));
  RETURN_IF_ERROR(agent_->WaitUntilReady(deadline).status());
  agent::v1::SetupSandboxRequest setup;
  setup.set_sandbox_id(id_);
  setup.set_hostname(bundle.hostname);
  RETURN_IF_ERROR(Annotate(agent_->SetupSandbox(setup), "set up the guest"));
  spdlog::info("sandbox={} op=boot hypervisor={} socket={}", id_, factory_->Kind(),
               paths_.SocketPath(id_));
  return absl::OkStatus();
}

absl::StatusOr<std::string> VmShim::OnRequest(const std::string&, const std::string&,
                                              std::string payload) {
  return payload;
}

void VmShim::OnResponse(const std::string& service, const std::string& method,
                        const std::string& request_payload, bool ok) {
  if (!IsTask(service)) return;
  if (method == "Create" && ok) {
    ::containerd::task::v3::CreateTaskRequest req;
    if (req.ParseFromString(request_payload)) {
      std::lock_guard<std::mutex> l(mu_);
      containers_.insert(req.id());
    }
  } else if (method == "Delete" && ok) {
    ::containerd::task::v3::DeleteRequest req;
    if (req.ParseFromString(request_payload) && req.exec_id().empty()) {
      std::lock_guard<std::mutex> l(mu_);
      containers_.erase(req.id());
    }
  } else if (method == "Shutdown") {
    bool empty;
    {
      std::lock_guard<std::mutex> l(mu_);
      empty = containers_.empty();
    }
    if (empty) Wake("containerd shut the shim down");
  }
}

void VmShim::Wake(const char* why) {
  std::lock_guard<std::mutex> l(mu_);
  if (!done_) why_ = why;
  done_ = true;
  cv_.notify_all();
}

int VmShim::Run() {
  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return done_; });
    spdlog::info("sandbox={} op=shutdown why=\"{}\"", id_, why_);
  }
  // Let the Shutdown answer reach containerd before the socket goes.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (agent_) (void)agent_->Shutdown(absl::Seconds(1));
  agent_.reset();
  if (bridge_) bridge_->Close();
  absl::Status st = vm_ ? vm_->Stop(absl::Seconds(5)) : absl::OkStatus();
  if (!st.ok()) spdlog::warn("sandbox={} op=stop error=\"{}\"", id_, st.ToString());
  std::error_code ec;
  std::filesystem::remove_all(SocketDirFor(config_.sandboxer.state_dir, id_), ec);
  std::filesystem::remove_all(paths_.PodDir(id_), ec);
  return st.ok() ? 0 : 1;
}

void VmShim::Abort() {
  agent_.reset();
  if (bridge_) bridge_->Close();
  if (vm_ && vm_->Identity()) (void)vm_->Kill();
  std::error_code ec;
  if (!id_.empty()) {
    std::filesystem::remove_all(SocketDirFor(config_.sandboxer.state_dir, id_), ec);
    std::filesystem::remove_all(paths_.PodDir(id_), ec);
  }
}

absl::Status VmShim::Delete(const Config& config, const ShimPaths& paths,
                            const std::string& sandbox_id) {
  RETURN_IF_ERROR(ValidateId(sandbox_id, "sandbox id"));
  std::string dir = paths.PodDir(sandbox_id);
  auto state = ReadSmallFile(dir + "/vm.json", 1 << 20);
  if (state.ok()) {
    boost::asio::io_context io;
    ASSIGN_OR_RETURN(auto factory, MakeHypervisorFactory(config, io));
    auto vm = factory->New();
    vm->SetExitCallback([](const vmm::VmExit&) {});
    nlohmann::json j = nlohmann::json::parse(*state, nullptr, false);
    if (j.is_object() && j.contains("shim") && j["shim"].is_object()) {
      // The shim daemon first (containerd gave up on it), then its VM.
      ProcessIdentity shim{j["shim"].value("pid", 0), j["shim"].value("start_time", uint64_t{0})};
      if (shim.pid > 0 && shim.pid != getpid() && IsSameProcessAlive(shim)) {
        kill(shim.pid, SIGKILL);
      }
    }
    if (j.is_object() && j.contains("vm") && vm->Recover(j["vm"]).ok()) (void)vm->Kill();
  }
  std::error_code ec;
  std::filesystem::remove_all(SocketDirFor(config.sandboxer.state_dir, sandbox_id), ec);
  std::filesystem::remove_all(dir, ec);
  return absl::OkStatus();
}

}  // namespace kuasar::shim
