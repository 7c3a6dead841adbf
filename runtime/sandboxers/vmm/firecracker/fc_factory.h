// FcHypervisorFactory: the firecracker driver's entry point, made once per daemon from
// the [hypervisor] section (FcConfig); checks the binary is there, then makes one
// FcHypervisor per sandbox. Thread-safe.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "runtime/core/config.h"
#include "runtime/sandboxers/vmm/firecracker/fc_config.h"
#include "runtime/sandboxers/vmm/hypervisor.h"

namespace boost::asio {
class io_context;
}

namespace kuasar::vmm {

class FcHypervisorFactory : public HypervisorFactory {
 public:
  static absl::StatusOr<std::unique_ptr<FcHypervisorFactory>> Create(const FcConfig& config,
                                                                     boost::asio::io_context& io);

  std::string_view Kind() const override { return "firecracker"; }
  VmConfig DefaultVmConfig() const override;
  std::unique_ptr<Hypervisor> New() override;

 private:
  FcHypervisorFactory(const FcConfig& config, boost::asio::io_context& io)
      : config_(config), io_(io) {}
  FcConfig config_;
  boost::asio::io_context& io_;
};

// The registry's maker for driver = "firecracker".
absl::StatusOr<std::unique_ptr<HypervisorFactory>> NewFcFactory(const Config& config,
                                                                boost::asio::io_context& io);

}  // namespace kuasar::vmm
