// QemuHypervisor's persisted state, Recover and Describe.
#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/qemu/qemu_hypervisor.h"
#include "runtime/sandboxers/vmm/qemu/qemu_shared_state.h"

namespace kuasar::vmm {
namespace {

using nlohmann::json;

json IdentityJson(const ProcessIdentity& id) {
  return {{"pid", id.pid}, {"start_time", id.start_time}};
}

absl::StatusOr<ProcessIdentity> IdentityFrom(const json& j, std::string_view what) {
  if (!j.is_object() || !j.contains("pid") || !j.contains("start_time") ||
      !j["pid"].is_number_integer() || !j["start_time"].is_number_unsigned()) {
    return absl::DataLossError(absl::StrFormat("qemu state: bad %s identity", what));
  }
  return ProcessIdentity{j["pid"].get<pid_t>(), j["start_time"].get<uint64_t>()};
}

}  // namespace

json QemuHypervisor::PersistedState() const {
  std::lock_guard<std::mutex> lock(mu_);
  json j = {{"driver", "qemu"},           {"sandbox_id", vm_.sandbox_id},
            {"state_dir", vm_.state_dir}, {"socket_dir", vm_.socket_dir},
            {"accel", AccelName(accel_)}, {"machine", config_.machine_type},
            {"hotplugged", hotplugged_}};
  if (qemu_) j["qemu"] = IdentityJson(qemu_->identity());
  if (virtiofsd_) j["virtiofsd"] = IdentityJson(virtiofsd_->identity());
  return j;
}

absl::Status QemuHypervisor::Recover(const json& state) {
  if (!state.is_object() || state.value("driver", "") != "qemu") {
    return absl::InvalidArgumentError("qemu: Recover needs the state PersistedState() gave");
  }
  if (Identity()) return absl::FailedPreconditionError("qemu: Recover on a running instance");
  vm_.sandbox_id = state.value("sandbox_id", "");
  vm_.state_dir = state.value("state_dir", "");
  vm_.socket_dir = state.value("socket_dir", "");
  if (vm_.sandbox_id.empty() || vm_.state_dir.empty() || vm_.socket_dir.empty()) {
    return absl::DataLossError("qemu state: sandbox_id, state_dir or socket_dir missing");
  }
  paths_ = QemuPaths::For(vm_);
  shared_->sandbox_id = vm_.sandbox_id;
  ASSIGN_OR_RETURN(ProcessIdentity qemu_id, IdentityFrom(state.value("qemu", json()), "qemu"));
  ASSIGN_OR_RETURN(std::unique_ptr<VmmProcess> qemu, VmmProcess::Attach(io_, qemu_id));
  std::unique_ptr<VmmProcess> virtiofsd;
  if (state.contains("virtiofsd")) {
    ASSIGN_OR_RETURN(ProcessIdentity id, IdentityFrom(state["virtiofsd"], "virtiofsd"));
    auto attached = VmmProcess::Attach(io_, id);
    if (attached.ok()) {
      virtiofsd = std::move(*attached);
    } else {
      spdlog::warn("sandbox={} op=recover virtiofsd=gone reason=\"{}\"", vm_.sandbox_id,
                   attached.status().message());
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    qemu_ = std::move(qemu);
    virtiofsd_ = std::move(virtiofsd);
    hotplugged_ = state.value("hotplugged", std::map<std::string, std::string>());
  }
  {
    // The guest was up when the sandboxer went away; the agent is dialed with retries.
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->agent_open = true;
  }
  WatchExit();
  absl::Status st = ConnectQmp(absl::Now() + absl::Seconds(5));
  if (st.ok()) st = Qmp("query-status", nullptr).status();
  if (!st.ok()) {
    return absl::UnavailableError(
        absl::StrFormat("sandbox %s: QEMU pid %d is alive but QMP does not answer: %s",
                        vm_.sandbox_id, qemu_id.pid, st.message()));
  }
  spdlog::info("sandbox={} op=recover vmm=qemu pid={}", vm_.sandbox_id, qemu_id.pid);
  return absl::OkStatus();
}

void QemuHypervisor::Describe(std::map<std::string, std::string>* info) const {
  (*info)["vmm"] = "qemu";
  (*info)["accel"] = std::string(AccelName(accel_));
  (*info)["machine"] = config_.machine_type;
  (*info)["console_log"] = paths_.console_log;
  (*info)["vmm_log"] = paths_.vmm_log;
  (*info)["agent_socket"] = paths_.agent_socket;
  (*info)["qmp_socket"] = paths_.qmp_socket;
  if (auto id = Identity()) (*info)["vmm_pid"] = absl::StrFormat("%d", id->pid);
}

}  // namespace kuasar::vmm
