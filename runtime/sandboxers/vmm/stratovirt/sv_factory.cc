#include "runtime/sandboxers/vmm/stratovirt/sv_factory.h"

#include <unistd.h>

#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/stratovirt/sv_hypervisor.h"

namespace kuasar::vmm {

absl::StatusOr<std::unique_ptr<SvHypervisorFactory>> SvHypervisorFactory::Create(
    const SvConfig& config, boost::asio::io_context& io) {
  if (::access(config.path.c_str(), X_OK) != 0) {
    return Annotate(ErrnoStatus(errno, "access", config.path),
                    "[hypervisor] path: no stratovirt binary (not packaged for Debian; the fake "
                    "VMM's bin/fake-vmm/stratovirt plays it)");
  }
  return std::unique_ptr<SvHypervisorFactory>(new SvHypervisorFactory(config, io));
}

VmConfig SvHypervisorFactory::DefaultVmConfig() const {
  VmConfig vm;
  vm.vcpus = static_cast<uint32_t>(config_.vcpus);
  vm.memory_mib = static_cast<uint64_t>(config_.memory_in_mb);
  vm.kernel_path = config_.kernel_path;
  vm.initrd_path = config_.initrd_path;
  vm.debug = config_.debug;
  return vm;
}

std::unique_ptr<Hypervisor> SvHypervisorFactory::New() {
  return std::make_unique<SvHypervisor>(config_, io_);
}

absl::StatusOr<std::unique_ptr<HypervisorFactory>> NewSvFactory(const Config& config,
                                                                boost::asio::io_context& io) {
  ASSIGN_OR_RETURN(SvConfig sv, ParseSvConfig(config));
  ASSIGN_OR_RETURN(std::unique_ptr<SvHypervisorFactory> factory,
                   SvHypervisorFactory::Create(sv, io));
  return std::unique_ptr<HypervisorFactory>(std::move(factory));
}

}  // namespace kuasar::vmm
