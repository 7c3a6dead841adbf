// QemuHypervisor::Shared (internal to the qemu driver): what the io-thread callbacks (QMP
// events, the exit watch) share with the driver's blocking calls. Held by shared_ptr, so
// a callback running late never touches a destroyed driver. Guarded by `mu`.
#pragma once

#include <condition_variable>
#include <mutex>
#include <set>
#include <string>

#include "runtime/sandboxers/vmm/qemu/qemu_hypervisor.h"

namespace kuasar::vmm {

struct QemuHypervisor::Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::string sandbox_id;
  ExitCallback exit_callback;
  bool agent_open = false;  // the guest opened agent.channel.0 (VSERPORT_CHANGE)
  bool exited = false;
  bool stop_requested = false;
  std::string shutdown_reason;    // the SHUTDOWN event's reason ("guest-shutdown", ...)
  std::set<std::string> deleted;  // DEVICE_DELETED device ids

  // io thread.
  void OnEvent(const QmpEvent& e);
};

}  // namespace kuasar::vmm
