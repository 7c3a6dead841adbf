// LibvirtHypervisorFactory: the libvirt driver's entry point, made once per daemon from
// the [hypervisor] section: checks the emulator is there and libvirtd answers on `uri`,
// resolves accel = "auto" with the qemu driver's KVM probe, then makes one
// LibvirtHypervisor per sandbox. Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/core/config.h"
#include "runtime/sandboxers/vmm/hypervisor.h"
#include "runtime/sandboxers/vmm/libvirt/libvirt_config.h"

namespace boost::asio {
class io_context;
}

namespace kuasar::vmm {

class LibvirtHypervisorFactory : public HypervisorFactory {
 public:
  static absl::StatusOr<std::unique_ptr<LibvirtHypervisorFactory>> Create(
      const LibvirtConfig& config, boost::asio::io_context& io);

  std::string_view Kind() const override { return "libvirt"; }
  VmConfig DefaultVmConfig() const override;
  std::unique_ptr<Hypervisor> New() override;

  Accel accel() const { return accel_; }

 private:
  LibvirtHypervisorFactory(const LibvirtConfig& config, boost::asio::io_context& io)
      : config_(config), io_(io) {}

  LibvirtConfig config_;
  boost::asio::io_context& io_;
  Accel accel_ = Accel::kTcg;
};

// Reads [hypervisor] from the daemon's config and creates the factory.
absl::StatusOr<std::unique_ptr<HypervisorFactory>> NewLibvirtFactory(const Config& config,
                                                                     boost::asio::io_context& io);

}  // namespace kuasar::vmm
