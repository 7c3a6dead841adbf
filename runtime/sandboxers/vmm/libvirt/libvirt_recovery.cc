// LibvirtHypervisor's persisted state, Recover, Describe, and finding QEMU's process.
#include <dirent.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/libvirt/libvirt_hypervisor.h"
#include "runtime/sandboxers/vmm/libvirt/libvirt_shared_state.h"

namespace kuasar::vmm {

using nlohmann::json;

absl::StatusOr<ProcessIdentity> FindQemuByUuid(std::string_view uuid) {
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return ErrnoStatus(errno, "opendir", "/proc");
  std::optional<pid_t> found;
  while (dirent* e = ::readdir(proc)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    auto cmdline = ReadSmallFile(absl::StrFormat("/proc/%d/cmdline", pid), 1 << 20);
    if (!cmdline.ok()) continue;  // gone meanwhile, or a kernel thread
    std::vector<std::string> argv = absl::StrSplit(*cmdline, '\0');
    for (size_t i = 0; i + 1 < argv.size(); ++i) {
      if (argv[i] == "-uuid" && argv[i + 1] == uuid) found = pid;
    }
    if (found) break;
  }
  ::closedir(proc);
  if (!found) return absl::NotFoundError(absl::StrFormat("no process runs with -uuid %s", uuid));
  return IdentifyProcess(*found);
}

json LibvirtHypervisor::PersistedState() const {
  std::lock_guard<std::mutex> lock(mu_);
  json j = {{"driver", "libvirt"},
            {"uri", conn_ ? conn_->uri() : config_.uri},
            {"domain", name_},
            {"uuid", uuid_},
            {"sandbox_id", vm_.sandbox_id},
            {"state_dir", vm_.state_dir},
            {"socket_dir", vm_.socket_dir},
            {"accel", AccelName(accel_)}};
  if (qemu_) j["qemu"] = {{"pid", qemu_->pid}, {"start_time", qemu_->start_time}};
  return j;
}

absl::Status LibvirtHypervisor::Recover(const json& state) {
  if (!state.is_object() || state.value("driver", "") != "libvirt") {
    return absl::InvalidArgumentError("libvirt: Recover needs the state PersistedState() gave");
  }
  if (domain()) return absl::FailedPreconditionError("libvirt: Recover on a running instance");
  vm_.sandbox_id = state.value("sandbox_id", "");
  vm_.state_dir = state.value("state_dir", "");
  vm_.socket_dir = state.value("socket_dir", "");
  std::string uri = state.value("uri", config_.uri);
  std::string uuid = state.value("uuid", "");
  if (vm_.sandbox_id.empty() || vm_.state_dir.empty() || vm_.socket_dir.empty() || uuid.empty()) {
    return absl::DataLossError("libvirt state: sandbox_id, dirs or uuid missing");
  }
  ASSIGN_OR_RETURN(name_, DomainName(vm_.sandbox_id));
  paths_ = LibvirtPaths::For(vm_);
  uuid_ = uuid;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->sandbox_id = vm_.sandbox_id;
    shared_->uuid = uuid;
  }
  // Listen first, then look: an exit between the two is not missed.
  RETURN_IF_ERROR(Connect(uri));
  virDomainPtr dom = virDomainLookupByUUIDString(conn_->get(), uuid.c_str());
  if (dom == nullptr) {
    absl::Status st = LibvirtError(absl::StrFormat("virDomainLookupByUUIDString %s", uuid));
    if (absl::IsNotFound(st)) {
      return absl::NotFoundError(
          absl::StrFormat("sandbox %s: domain %s (%s) is gone", vm_.sandbox_id, name_, uuid));
    }
    return st;
  }
  DomainHandle handle(dom);
  const char* name = virDomainGetName(dom);
  if (name == nullptr || name_ != name) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "libvirt domain %s is named %s, not %s", uuid, name ? name : "?", name_));
  }
  int dstate = 0, reason = 0;
  if (virDomainGetState(dom, &dstate, &reason, 0) < 0 || dstate == VIR_DOMAIN_SHUTOFF) {
    return absl::NotFoundError(
        absl::StrFormat("sandbox %s: domain %s is not running", vm_.sandbox_id, name_));
  }
  auto qemu = FindQemuByUuid(uuid);
  if (qemu.ok() && state.contains("qemu") && state["qemu"].value("pid", 0) != qemu->pid) {
    spdlog::warn("sandbox={} op=recover recorded_pid={} qemu_pid={}", vm_.sandbox_id,
                 state["qemu"].value("pid", 0), qemu->pid);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    domain_ = std::move(handle);
    if (qemu.ok()) qemu_ = *qemu;
  }
  spdlog::info("sandbox={} op=recover vmm=libvirt domain={} pid={}", vm_.sandbox_id, name_,
               qemu.ok() ? qemu->pid : 0);
  return absl::OkStatus();
}

void LibvirtHypervisor::Describe(std::map<std::string, std::string>* info) const {
  (*info)["vmm"] = "libvirt";
  (*info)["libvirt_uri"] = config_.uri;
  (*info)["libvirt_domain"] = name_;
  (*info)["libvirt_uuid"] = uuid_;
  (*info)["accel"] = std::string(AccelName(accel_));
  (*info)["machine"] = config_.machine_type;
  (*info)["console_log"] = paths_.console_log;
  (*info)["agent_socket"] = paths_.agent_socket;
  if (auto id = Identity()) (*info)["vmm_pid"] = absl::StrFormat("%d", id->pid);
}

}  // namespace kuasar::vmm
