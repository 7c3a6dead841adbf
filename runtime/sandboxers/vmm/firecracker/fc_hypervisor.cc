#include "runtime/sandboxers/vmm/firecracker/fc_hypervisor.h"

#include <signal.h>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"

namespace kuasar::vmm {

using nlohmann::json;

RestVmmOptions FcHypervisor::OptionsFor(const FcConfig& config) {
  RestVmmOptions o;
  o.driver = "firecracker";
  o.ping_target = "/";
  o.vsock_port = static_cast<uint32_t>(config.agent_vsock_port);
  o.api_timeout = absl::Milliseconds(config.api_timeout_ms);
  o.capabilities = config.capabilities;
  // virtiofsd_path stays empty: Firecracker has no virtio-fs, Prepare refuses shared dirs.
  return o;
}

FcHypervisor::FcHypervisor(const FcConfig& config, boost::asio::io_context& io)
    : RestVmmHypervisor(OptionsFor(config), io), config_(config) {}

absl::StatusOr<std::vector<std::string>> FcHypervisor::BuildArgv(const VmConfig& vm) {
  ASSIGN_OR_RETURN(boot_requests_, BuildFcBootRequests(config_, vm, paths()));
  return BuildFcArgv(config_, vm, paths());
}

absl::Status FcHypervisor::ConfigureAndBoot() {
  for (const FcRequest& r : boot_requests_) {
    RETURN_IF_ERROR(rest().Call("PUT", r.path, r.body).status());
  }
  return rest().Call("PUT", "/actions", FcAction("InstanceStart")).status();
}

absl::Status FcHypervisor::RequestPowerOff() {
  // Ctrl+Alt+Del on the i8042 keyboard: the guest reboots, which Firecracker treats as
  // the end of the microVM (it exits with it).
  return rest().Call("PUT", "/actions", FcAction("SendCtrlAltDel")).status();
}

void FcHypervisor::RequestQuit() {
  // No API call quits Firecracker; SIGTERM does (Stop escalates to SIGKILL).
  if (VmmProcess* vmm = vmm_process()) (void)vmm->Signal(SIGTERM);
}

absl::StatusOr<std::string> FcHypervisor::InstanceState() const {
  ASSIGN_OR_RETURN(json info, rest().Call("GET", "/"));
  return FcInstanceState(info);
}

absl::Status FcHypervisor::CheckRecovered() {
  ASSIGN_OR_RETURN(std::string state, InstanceState());
  if (state != "Running" && state != "Paused") {
    return absl::FailedPreconditionError(absl::StrFormat("the microVM is %s", state));
  }
  return absl::OkStatus();
}

void FcHypervisor::Describe(std::map<std::string, std::string>* info) const {
  RestVmmHypervisor::Describe(info);
  (*info)["console_log"] = paths().vmm_log;  // the serial console is Firecracker's stdout
}

}  // namespace kuasar::vmm
