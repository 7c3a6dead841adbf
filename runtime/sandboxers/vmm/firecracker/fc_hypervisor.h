// FcHypervisor: the Hypervisor driver for Firecracker. The VMM runs as our child (in the
// pod's network namespace when one is given) with --api-sock; the microVM is configured
// with pre-boot PUTs (/machine-config, /boot-source, /drives, /network-interfaces,
// /vsock) and started with InstanceStart; the agent channel is hybrid vsock on
// <socket_dir>/vsock.sock. The serial console is Firecracker's stdout, so it lands in
// <state_dir>/firecracker.log. No shared dir (no virtio-fs) and no hotplug. Lifecycle,
// Stop, Kill and Recover come from RestVmmHypervisor. Threading as for it.
#pragma once

#include <string>
#include <vector>

#include "runtime/sandboxers/vmm/firecracker/fc_config.h"
#include "runtime/sandboxers/vmm/firecracker/fc_requests.h"
#include "runtime/sandboxers/vmm/rest/rest_vmm_hypervisor.h"

namespace kuasar::vmm {

class FcHypervisor : public RestVmmHypervisor {
 public:
  FcHypervisor(const FcConfig& config, boost::asio::io_context& io);

  // GET /'s state: "Not started", "Running", "Paused".
  absl::StatusOr<std::string> InstanceState() const;
  void Describe(std::map<std::string, std::string>* info) const override;

 protected:
  absl::StatusOr<std::vector<std::string>> BuildArgv(const VmConfig& vm) override;
  absl::Status ConfigureAndBoot() override;
  absl::Status RequestPowerOff() override;
  void RequestQuit() override;
  absl::Status CheckRecovered() override;

 private:
  static RestVmmOptions OptionsFor(const FcConfig& config);

  const FcConfig config_;
  std::vector<FcRequest> boot_requests_;
};

}  // namespace kuasar::vmm
