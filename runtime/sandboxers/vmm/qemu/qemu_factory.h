// QemuHypervisorFactory: the qemu driver's entry point. Made once per daemon from the
// [hypervisor] section: checks QEMU is there, resolves accel = "auto" with the KVM probe
// (cached per host boot, so only the first daemon start after a reboot pays for it) and
// which virtiofsd is installed; then makes one QemuHypervisor per sandbox. Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/core/config.h"
#include "runtime/sandboxers/vmm/hypervisor.h"
#include "runtime/sandboxers/vmm/qemu/qemu_config.h"

namespace boost::asio {
class io_context;
}

namespace kuasar::vmm {

class QemuHypervisorFactory : public HypervisorFactory {
 public:
  static absl::StatusOr<std::unique_ptr<QemuHypervisorFactory>> Create(const QemuConfig& config,
                                                                       boost::asio::io_context& io);

  std::string_view Kind() const override { return "qemu"; }
  VmConfig DefaultVmConfig() const override;
  std::unique_ptr<Hypervisor> New() override;

  Accel accel() const { return accel_; }
  // Why accel is what it is ("configured", or the probe's finding).
  const std::string& accel_reason() const { return accel_reason_; }

 private:
  QemuHypervisorFactory(const QemuConfig& config, boost::asio::io_context& io)
      : config_(config), io_(io) {}

  QemuConfig config_;
  boost::asio::io_context& io_;
  Accel accel_ = Accel::kTcg;
  std::string accel_reason_;
  bool virtiofsd_rust_ = false;
};

// Reads [hypervisor] from the daemon's config and creates the factory.
absl::StatusOr<std::unique_ptr<HypervisorFactory>> NewQemuFactory(const Config& config,
                                                                  boost::asio::io_context& io);

}  // namespace kuasar::vmm
