// ClhHypervisorFactory: the cloud-hypervisor driver's entry point, made once per daemon
// from the [hypervisor] section (ClhConfig); checks the binary is there, then makes one
// ClhHypervisor per sandbox. Thread-safe.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "runtime/core/config.h"
#include "runtime/sandboxers/vmm/clh/clh_config.h"
#include "runtime/sandboxers/vmm/hypervisor.h"

namespace boost::asio {
class io_context;
}

namespace kuasar::vmm {

class ClhHypervisorFactory : public HypervisorFactory {
 public:
  static absl::StatusOr<std::unique_ptr<ClhHypervisorFactory>> Create(const ClhConfig& config,
                                                                      boost::asio::io_context& io);

  std::string_view Kind() const override { return "cloud-hypervisor"; }
  VmConfig DefaultVmConfig() const override;
  std::unique_ptr<Hypervisor> New() override;

 private:
  ClhHypervisorFactory(const ClhConfig& config, boost::asio::io_context& io)
      : config_(config), io_(io) {}
  ClhConfig config_;
  boost::asio::io_context& io_;
};

// Reads [hypervisor] from the daemon's config and creates the factory (the registry's
// maker for driver = "cloud-hypervisor").
absl::StatusOr<std::unique_ptr<HypervisorFactory>> NewClhFactory(const Config& config,
                                                                 boost::asio::io_context& io);

}  // namespace kuasar::vmm
