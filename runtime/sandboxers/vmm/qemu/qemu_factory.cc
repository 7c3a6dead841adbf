#include "runtime/sandboxers/vmm/qemu/qemu_factory.h"

#include <unistd.h>

#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/common/kvm_probe.h"
#include "runtime/sandboxers/vmm/common/virtiofs_daemon.h"
#include "runtime/sandboxers/vmm/qemu/qemu_hypervisor.h"

namespace kuasar::vmm {

absl::StatusOr<std::unique_ptr<QemuHypervisorFactory>> QemuHypervisorFactory::Create(
    const QemuConfig& config, boost::asio::io_context& io) {
  if (::access(config.qemu_path.c_str(), X_OK) != 0) {
    return Annotate(ErrnoStatus(errno, "access", config.qemu_path),
                    "[hypervisor] qemu_path (apt-get install qemu-system-x86)");
  }
  auto factory = std::unique_ptr<QemuHypervisorFactory>(new QemuHypervisorFactory(config, io));
  switch (config.accel) {
    case Accel::kKvm:
    case Accel::kTcg:
      factory->accel_ = config.accel;
      factory->accel_reason_ = "configured";
      break;
    case Accel::kAuto: {
      KvmProbeOptions probe;
      probe.qemu_path = config.qemu_path;
      probe.kernel_path = config.kernel_path;
      probe.initrd_path = config.initrd_path;
      probe.machine = config.machine_type;
      probe.cpu_model = config.cpu_model.empty() ? "host" : config.cpu_model;
      probe.timeout = config.kvm_probe_timeout;
      probe.cache_path = config.kvm_probe_cache;
      auto result = ProbeKvm(probe);
      bool kvm = result.ok() && result->usable;
      factory->accel_ = kvm ? Accel::kKvm : Accel::kTcg;
      factory->accel_reason_ =
          result.ok() ? result->reason : std::string(result.status().message());
      break;
    }
  }
  if (config.share_fs == ShareFs::kVirtioFs) {
    auto rust = DetectVirtiofsdFlavor(config.virtiofs_daemon_path);
    if (!rust.ok()) {
      return Annotate(rust.status(),
                      "[hypervisor] share_fs = \"virtio-fs\" needs virtiofsd "
                      "(virtiofs_daemon_path), or set share_fs = \"none\"");
    }
    factory->virtiofsd_rust_ = *rust;
  }
  spdlog::info("vmm=qemu accel={} reason=\"{}\" machine={} share_fs={}", AccelName(factory->accel_),
               factory->accel_reason_, config.machine_type, ShareFsName(config.share_fs));
  return factory;
}

VmConfig QemuHypervisorFactory::DefaultVmConfig() const {
  VmConfig vm;
  vm.vcpus = static_cast<uint32_t>(config_.vcpus);
  vm.memory_mib = static_cast<uint64_t>(config_.memory_in_mb);
  vm.kernel_path = config_.kernel_path;
  vm.initrd_path = config_.initrd_path;
  vm.debug = config_.debug;
  return vm;
}

std::unique_ptr<Hypervisor> QemuHypervisorFactory::New() {
  return std::make_unique<QemuHypervisor>(config_, accel_, virtiofsd_rust_, io_);
}

absl::StatusOr<std::unique_ptr<HypervisorFactory>> NewQemuFactory(const Config& config,
                                                                  boost::asio::io_context& io) {
  ASSIGN_OR_RETURN(QemuConfig qemu, ParseQemuConfig(config));
  ASSIGN_OR_RETURN(std::unique_ptr<QemuHypervisorFactory> factory,
                   QemuHypervisorFactory::Create(qemu, io));
  return std::unique_ptr<HypervisorFactory>(std::move(factory));
}

}  // namespace kuasar::vmm
