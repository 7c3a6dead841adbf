// LibvirtHypervisor::Shared (internal to the libvirt driver): what libvirt's event thread
// shares with the driver's blocking calls. Held by shared_ptr (libvirt's callback opaque
// holds one too), so a late event never touches a destroyed driver. Guarded by `mu`.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "runtime/sandboxers/vmm/libvirt/libvirt_hypervisor.h"

namespace kuasar::vmm {

struct LibvirtHypervisor::Shared : std::enable_shared_from_this<LibvirtHypervisor::Shared> {
  std::mutex mu;
  std::condition_variable cv;
  boost::asio::io_context* io = nullptr;  // cleared (under mu) by the driver's destructor
  std::string sandbox_id;
  std::string uuid;  // events for other domains are ignored
  ExitCallback exit_callback;
  bool exited = false;
  bool stop_requested = false;
  std::string reason;

  // Any thread; the first call wins: marks the exit and posts the callback to `io`.
  void OnStopped(const std::string& why);
};

}  // namespace kuasar::vmm
