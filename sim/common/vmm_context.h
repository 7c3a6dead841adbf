// VmmContext bundles what every personality's VMM needs for one run: the runtime (event
// loop, signals, exit), the live fault plan and its injector, the boot sampler and the
// guest. Built by a personality after it has parsed its command line; destroyed (which
// kills and reaps the agent) when Run returns. One thread.
#pragma once

#include <string>

#include "sim/common/boot_model.h"
#include "sim/common/fault_injector.h"
#include "sim/common/guest.h"
#include "sim/common/sim_config.h"
#include "sim/common/vmm_runtime.h"

namespace kuasar::sim {

struct VmmContext {
  // `instance` names this VM for seeding (its API socket path or VM name).
  VmmContext(const SimConfig& c, const std::string& instance)
      : config(c),
        faults(c.faults),
        sampler(c.model, instance),
        guest(runtime.io(), config, faults, sampler),
        injector(runtime.io(), faults, &guest) {}

  // Sleeps the modelled VMM start-up time (exec to API socket up).
  void ModelStartup();

  const SimConfig& config;
  VmmRuntime runtime;
  FaultPlan faults;
  BootSampler sampler;
  Guest guest;
  FaultInjector injector;
};

// Declared after the channel objects a personality owns (hybrid vsock, serial ports), so
// that on every way out the guest is powered off and unhooked before those go.
struct GuestDetacher {
  Guest& guest;
  ~GuestDetacher() {
    guest.PowerOff();
    guest.UseSerial(nullptr);
    guest.SetVsockDevice(nullptr);
  }
};

// Redirects stderr (our log) to `path`, appending (CH --log-file, QEMU/StratoVirt -D).
absl::Status RedirectStderr(const std::string& path);

// The directory part of a path ("." for a bare name).
std::string DirName(const std::string& path);

}  // namespace kuasar::sim
