// Which Hypervisor driver a vmm sandboxer uses: `[hypervisor] driver = "..."` picks one of
// the drivers linked into this build and lets it parse the rest of the section. Adding a
// driver is one row in hypervisor_registry.cc.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "absl/status/statusor.h"
#include "runtime/core/config.h"
#include "runtime/sandboxers/vmm/hypervisor.h"

namespace kuasar {

// The driver names this build knows, in the order docs list them.
std::vector<std::string> HypervisorDriverNames();

// The `[hypervisor] driver` value (default "qemu"); INVALID_ARGUMENT for an unknown one.
absl::StatusOr<std::string> ConfiguredHypervisorDriver(const Config& config);

// Makes the configured driver's factory; its errors name the offending config key.
absl::StatusOr<std::unique_ptr<vmm::HypervisorFactory>> MakeHypervisorFactory(
    const Config& config, boost::asio::io_context& io);

}  // namespace kuasar
