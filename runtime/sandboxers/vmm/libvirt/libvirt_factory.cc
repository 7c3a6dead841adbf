#include "runtime/sandboxers/vmm/libvirt/libvirt_factory.h"

#include <unistd.h>

#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/common/kvm_probe.h"
#include "runtime/sandboxers/vmm/libvirt/libvirt_connection.h"
#include "runtime/sandboxers/vmm/libvirt/libvirt_hypervisor.h"

namespace kuasar::vmm {

absl::StatusOr<std::unique_ptr<LibvirtHypervisorFactory>> LibvirtHypervisorFactory::Create(
    const LibvirtConfig& config, boost::asio::io_context& io) {
  if (::access(config.qemu_path.c_str(), X_OK) != 0) {
    return Annotate(ErrnoStatus(errno, "access", config.qemu_path),
                    "[hypervisor] qemu_path (apt-get install qemu-system-x86)");
  }
  if (config.share_fs == ShareFs::kVirtioFs &&
      ::access(config.virtiofs_daemon_path.c_str(), X_OK) != 0) {
    return Annotate(ErrnoStatus(errno, "access", config.virtiofs_daemon_path),
                    "[hypervisor] virtiofs_daemon_path, or set share_fs = \"none\"");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<LibvirtConnection> conn, LibvirtConnection::Open(config.uri));
  auto factory =
      std::unique_ptr<LibvirtHypervisorFactory>(new LibvirtHypervisorFactory(config, io));
  std::string reason = "configured";
  if (config.accel == Accel::kAuto) {
    KvmProbeOptions probe;
    probe.qemu_path = config.qemu_path;
    probe.kernel_path = config.kernel_path;
    probe.initrd_path = config.initrd_path;
    probe.machine = config.machine_type;
    probe.cpu_model = config.cpu_model.empty() ? "host" : config.cpu_model;
    probe.timeout = config.kvm_probe_timeout;
    probe.cache_path = config.kvm_probe_cache;
    auto result = ProbeKvm(probe);
    factory->accel_ = result.ok() && result->usable ? Accel::kKvm : Accel::kTcg;
    reason = result.ok() ? result->reason : std::string(result.status().message());
  } else {
    factory->accel_ = config.accel;
  }
  spdlog::info("vmm=libvirt uri={} versions=\"{}\" accel={} reason=\"{}\" machine={}", config.uri,
               conn->Versions(), AccelName(factory->accel_), reason, config.machine_type);
  return factory;
}

VmConfig LibvirtHypervisorFactory::DefaultVmConfig() const {
  VmConfig vm;
  vm.vcpus = static_cast<uint32_t>(config_.vcpus);
  vm.memory_mib = static_cast<uint64_t>(config_.memory_in_mb);
  vm.kernel_path = config_.kernel_path;
  vm.initrd_path = config_.initrd_path;
  vm.debug = config_.debug;
  return vm;
}

std::unique_ptr<Hypervisor> LibvirtHypervisorFactory::New() {
  return std::make_unique<LibvirtHypervisor>(config_, accel_, io_);
}

absl::StatusOr<std::unique_ptr<HypervisorFactory>> NewLibvirtFactory(const Config& config,
                                                                     boost::asio::io_context& io) {
  ASSIGN_OR_RETURN(LibvirtConfig libvirt, ParseLibvirtConfig(config));
  ASSIGN_OR_RETURN(std::unique_ptr<LibvirtHypervisorFactory> factory,
                   LibvirtHypervisorFactory::Create(libvirt, io));
  return std::unique_ptr<HypervisorFactory>(std::move(factory));
}

}  // namespace kuasar::vmm
