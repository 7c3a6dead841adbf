// ClhHypervisor: the Hypervisor driver for Cloud Hypervisor. The VMM runs as our child
// (in the pod's network namespace when one is given) with only --api-socket; the VM is
// then created and booted over its REST API (vm.create, vm.boot); the agent channel is
// hybrid vsock on <socket_dir>/vsock.sock; the shared dir goes over virtio-fs
// (virtiofsd); disks and nets hotplug with vm.add-disk / vm.add-net / vm.remove-device.
// Lifecycle, Stop, Kill and Recover come from RestVmmHypervisor. Threading as for it.
#pragma once

#include <string_view>

#include "runtime/sandboxers/vmm/clh/clh_config.h"
#include "runtime/sandboxers/vmm/rest/rest_vmm_hypervisor.h"

namespace kuasar::vmm {

class ClhHypervisor : public RestVmmHypervisor {
 public:
  ClhHypervisor(const ClhConfig& config, boost::asio::io_context& io);

  absl::Status AddDisk(const DiskDevice& disk) override;
  absl::Status RemoveDisk(std::string_view id) override;
  absl::Status AddNet(const NetDevice& net) override;
  absl::Status RemoveNet(std::string_view id) override;

  // GET vm.info's state: "Running", "Paused", "Created", ...
  absl::StatusOr<std::string> VmState() const;

 protected:
  absl::StatusOr<std::vector<std::string>> BuildArgv(const VmConfig& vm) override;
  absl::Status ConfigureAndBoot() override;
  absl::Status RequestPowerOff() override;
  void RequestQuit() override;
  absl::Status CheckRecovered() override;

 private:
  static RestVmmOptions OptionsFor(const ClhConfig& config);
  absl::Status Put(std::string_view endpoint, const std::optional<nlohmann::json>& body) const;

  const ClhConfig config_;
  nlohmann::json vm_config_;  // what vm.create is sent
};

}  // namespace kuasar::vmm
