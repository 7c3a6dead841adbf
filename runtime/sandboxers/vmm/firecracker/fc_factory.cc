#include "runtime/sandboxers/vmm/firecracker/fc_factory.h"

#include <unistd.h>

#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/firecracker/fc_hypervisor.h"

namespace kuasar::vmm {

absl::StatusOr<std::unique_ptr<FcHypervisorFactory>> FcHypervisorFactory::Create(
    const FcConfig& config, boost::asio::io_context& io) {
  if (::access(config.path.c_str(), X_OK) != 0) {
    return Annotate(ErrnoStatus(errno, "access", config.path),
                    "[hypervisor] path: no firecracker binary (not packaged for Debian; the "
                    "fake VMM's bin/fake-vmm/firecracker plays it)");
  }
  return std::unique_ptr<FcHypervisorFactory>(new FcHypervisorFactory(config, io));
}

VmConfig FcHypervisorFactory::DefaultVmConfig() const {
  VmConfig vm;
  vm.vcpus = static_cast<uint32_t>(config_.vcpus);
  vm.memory_mib = static_cast<uint64_t>(config_.memory_in_mb);
  vm.kernel_path = config_.kernel_path;
  vm.initrd_path = config_.initrd_path;
  vm.debug = config_.debug;
  return vm;
}

std::unique_ptr<Hypervisor> FcHypervisorFactory::New() {
  return std::make_unique<FcHypervisor>(config_, io_);
}

absl::StatusOr<std::unique_ptr<HypervisorFactory>> NewFcFactory(const Config& config,
                                                                boost::asio::io_context& io) {
  ASSIGN_OR_RETURN(FcConfig fc, ParseFcConfig(config));
  ASSIGN_OR_RETURN(std::unique_ptr<FcHypervisorFactory> factory,
                   FcHypervisorFactory::Create(fc, io));
  return std::unique_ptr<HypervisorFactory>(std::move(factory));
}

}  // namespace kuasar::vmm
