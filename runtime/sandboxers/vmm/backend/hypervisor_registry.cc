#include "runtime/sandboxers/vmm/backend/hypervisor_registry.h"

#include <functional>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/base/status_macros.h"
#include "runtime/core/toml_section.h"
#include "runtime/sandboxers/vmm/clh/clh_factory.h"
#include "runtime/sandboxers/vmm/firecracker/fc_factory.h"
#ifdef KUASAR_HAVE_LIBVIRT
#include "runtime/sandboxers/vmm/libvirt/libvirt_factory.h"
#endif
#include "runtime/sandboxers/vmm/qemu/qemu_factory.h"
#include "runtime/sandboxers/vmm/stratovirt/sv_factory.h"

namespace kuasar {
namespace {

using Maker = std::function<absl::StatusOr<std::unique_ptr<vmm::HypervisorFactory>>(
    const Config&, boost::asio::io_context&)>;

struct Driver {
  const char* name;
  Maker make;
};

const std::vector<Driver>& Drivers() {
  static const std::vector<Driver> drivers = {
      {"qemu", vmm::NewQemuFactory},
      {"cloud-hypervisor", vmm::NewClhFactory},
      {"firecracker", vmm::NewFcFactory},
      {"stratovirt", vmm::NewSvFactory},
#ifdef KUASAR_HAVE_LIBVIRT
      {"libvirt", vmm::NewLibvirtFactory},  // built where pkg-config finds libvirt
#endif
  };
  return drivers;
}

}  // namespace

std::vector<std::string> HypervisorDriverNames() {
  std::vector<std::string> names;
  for (const Driver& d : Drivers()) names.push_back(d.name);
  return names;
}

absl::StatusOr<std::string> ConfiguredHypervisorDriver(const Config& config) {
  TomlSection top(config.root.get(), "", config.source), s(nullptr, "", "");
  RETURN_IF_ERROR(top.Sub("hypervisor", &s));
  std::string driver = "qemu";
  RETURN_IF_ERROR(s.Get("driver", &driver));
  for (const Driver& d : Drivers()) {
    if (driver == d.name) return driver;
  }
  return s.Error("driver", absl::StrFormat("unknown hypervisor driver \"%s\"; this build has: %s",
                                           driver, absl::StrJoin(HypervisorDriverNames(), ", ")));
}

absl::StatusOr<std::unique_ptr<vmm::HypervisorFactory>> MakeHypervisorFactory(
    const Config& config, boost::asio::io_context& io) {
  ASSIGN_OR_RETURN(std::string driver, ConfiguredHypervisorDriver(config));
  for (const Driver& d : Drivers()) {
    if (driver == d.name) return d.make(config, io);
  }
  return absl::InternalError("unreachable: driver checked above");
}

}  // namespace kuasar
