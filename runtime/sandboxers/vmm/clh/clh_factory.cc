#include "runtime/sandboxers/vmm/clh/clh_factory.h"

#include <unistd.h>

#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/clh/clh_hypervisor.h"

namespace kuasar::vmm {

absl::StatusOr<std::unique_ptr<ClhHypervisorFactory>> ClhHypervisorFactory::Create(
    const ClhConfig& config, boost::asio::io_context& io) {
  if (::access(config.path.c_str(), X_OK) != 0) {
    return Annotate(ErrnoStatus(errno, "access", config.path),
                    "[hypervisor] path: no cloud-hypervisor binary (Cloud Hypervisor is not "
                    "packaged for Debian; the fake VMM's bin/fake-vmm/cloud-hypervisor plays it)");
  }
  return std::unique_ptr<ClhHypervisorFactory>(new ClhHypervisorFactory(config, io));
}

VmConfig ClhHypervisorFactory::DefaultVmConfig() const {
  VmConfig vm;
  vm.vcpus = static_cast<uint32_t>(config_.vcpus);
  vm.memory_mib = static_cast<uint64_t>(config_.memory_in_mb);
  vm.kernel_path = config_.kernel_path;
  vm.initrd_path = config_.initrd_path;
  vm.debug = config_.debug;
  return vm;
}

std::unique_ptr<Hypervisor> ClhHypervisorFactory::New() {
  return std::make_unique<ClhHypervisor>(config_, io_);
}

absl::StatusOr<std::unique_ptr<HypervisorFactory>> NewClhFactory(const Config& config,
                                                                 boost::asio::io_context& io) {
  ASSIGN_OR_RETURN(ClhConfig clh, ParseClhConfig(config));
  ASSIGN_OR_RETURN(std::unique_ptr<ClhHypervisorFactory> factory,
                   ClhHypervisorFactory::Create(clh, io));
  return std::unique_ptr<HypervisorFactory>(std::move(factory));
}

}  // namespace kuasar::vmm
