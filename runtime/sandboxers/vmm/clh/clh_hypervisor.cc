#include "runtime/sandboxers/vmm/clh/clh_hypervisor.h"

#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/clh/clh_requests.h"

namespace kuasar::vmm {

using nlohmann::json;

RestVmmOptions ClhHypervisor::OptionsFor(const ClhConfig& config) {
  RestVmmOptions o;
  o.driver = "cloud-hypervisor";
  o.ping_target = absl::StrFormat("%svmm.ping", kClhApiRoot);
  o.vsock_port = static_cast<uint32_t>(config.agent_vsock_port);
  o.api_timeout = absl::Milliseconds(config.api_timeout_ms);
  o.capabilities = config.capabilities;
  o.virtiofsd_path = config.virtiofsd_path;
  o.virtiofs_cache = config.virtiofs_cache;
  o.virtiofsd_extra_args = config.virtiofsd_extra_args;
  return o;
}

ClhHypervisor::ClhHypervisor(const ClhConfig& config, boost::asio::io_context& io)
    : RestVmmHypervisor(OptionsFor(config), io), config_(config) {}

absl::Status ClhHypervisor::Put(std::string_view endpoint, const std::optional<json>& body) const {
  return rest().Call("PUT", absl::StrFormat("%s%s", kClhApiRoot, endpoint), body).status();
}

absl::StatusOr<std::vector<std::string>> ClhHypervisor::BuildArgv(const VmConfig& vm) {
  ASSIGN_OR_RETURN(vm_config_, BuildClhVmConfig(config_, vm, paths()));
  return BuildClhArgv(config_, vm, paths());
}

absl::Status ClhHypervisor::ConfigureAndBoot() {
  RETURN_IF_ERROR(Put("vm.create", vm_config_));
  return Put("vm.boot", std::nullopt);
}

absl::Status ClhHypervisor::RequestPowerOff() {
  // ACPI power button: the guest powers off, and Cloud Hypervisor exits with it.
  return Put("vm.power-button", std::nullopt);
}

void ClhHypervisor::RequestQuit() {
  if (absl::Status st = Put("vm.shutdown", std::nullopt); !st.ok()) {
    spdlog::debug("sandbox={} op=stop vm.shutdown=\"{}\"", vm().sandbox_id, st.message());
  }
  // The VMM may exit before it answers.
  (void)Put("vmm.shutdown", std::nullopt);
}

absl::StatusOr<std::string> ClhHypervisor::VmState() const {
  ASSIGN_OR_RETURN(json info, rest().Call("GET", absl::StrFormat("%svm.info", kClhApiRoot)));
  return ClhVmState(info);
}

absl::Status ClhHypervisor::CheckRecovered() {
  ASSIGN_OR_RETURN(std::string state, VmState());
  if (state != "Running" && state != "Paused") {
    return absl::FailedPreconditionError(absl::StrFormat("the VM is %s, not running", state));
  }
  return absl::OkStatus();
}

absl::Status ClhHypervisor::AddDisk(const DiskDevice& disk) {
  ASSIGN_OR_RETURN(json body, ClhDiskConfig(disk));
  return Annotate(Put("vm.add-disk", body),
                  absl::StrFormat("sandbox %s: add disk %s", vm().sandbox_id, disk.id));
}

absl::Status ClhHypervisor::AddNet(const NetDevice& net) {
  ASSIGN_OR_RETURN(json body, ClhNetConfig(net));
  return Annotate(Put("vm.add-net", body),
                  absl::StrFormat("sandbox %s: add net %s", vm().sandbox_id, net.id));
}

absl::Status ClhHypervisor::RemoveDisk(std::string_view id) {
  RETURN_IF_ERROR(CheckClhDeviceId(id));
  return Annotate(Put("vm.remove-device", ClhRemoveDevice(id)),
                  absl::StrFormat("sandbox %s: remove disk %s", vm().sandbox_id, id));
}

absl::Status ClhHypervisor::RemoveNet(std::string_view id) {
  RETURN_IF_ERROR(CheckClhDeviceId(id));
  return Annotate(Put("vm.remove-device", ClhRemoveDevice(id)),
                  absl::StrFormat("sandbox %s: remove net %s", vm().sandbox_id, id));
}

}  // namespace kuasar::vmm
