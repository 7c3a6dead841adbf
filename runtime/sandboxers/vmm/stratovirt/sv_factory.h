// SvHypervisorFactory: the stratovirt driver's entry point, made once per daemon from the
// [hypervisor] section (SvConfig); checks the binary is there, then makes one
// SvHypervisor per sandbox. Thread-safe.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "runtime/core/config.h"
#include "runtime/sandboxers/vmm/hypervisor.h"
#include "runtime/sandboxers/vmm/stratovirt/sv_config.h"

namespace boost::asio {
class io_context;
}

namespace kuasar::vmm {

class SvHypervisorFactory : public HypervisorFactory {
 public:
  static absl::StatusOr<std::unique_ptr<SvHypervisorFactory>> Create(const SvConfig& config,
                                                                     boost::asio::io_context& io);

  std::string_view Kind() const override { return "stratovirt"; }
  VmConfig DefaultVmConfig() const override;
  std::unique_ptr<Hypervisor> New() override;

 private:
  SvHypervisorFactory(const SvConfig& config, boost::asio::io_context& io)
      : config_(config), io_(io) {}
  SvConfig config_;
  boost::asio::io_context& io_;
};

// The registry's maker for driver = "stratovirt".
absl::StatusOr<std::unique_ptr<HypervisorFactory>> NewSvFactory(const Config& config,
                                                                boost::asio::io_context& io);

}  // namespace kuasar::vmm
