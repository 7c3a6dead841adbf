// LibvirtConnection: one open libvirt connection (virConnectPtr), and the process-wide
// libvirt event loop its domain events need: registered once, before the first connection,
// and run by one thread for the life of the process (libvirt has no way to stop it).
// libvirt's errors become absl::Status with libvirt's message. A connection is thread-safe
// as libvirt's are; the event callbacks run on the event-loop thread.
#pragma once

#include <libvirt/libvirt.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kuasar::vmm {

// Registers libvirt's default event loop and starts its thread (once per process), and
// keeps libvirt from printing its errors to stderr (they are returned instead).
void EnsureLibvirtEventLoop();

// The calling thread's last libvirt error as a status: VIR_ERR_NO_DOMAIN -> NOT_FOUND,
// VIR_ERR_OPERATION_INVALID -> FAILED_PRECONDITION, a lost connection -> UNAVAILABLE,
// else INTERNAL; `what` (the call and its object) prefixes the message.
absl::Status LibvirtError(std::string_view what);

struct DomainFree {
  void operator()(virDomainPtr d) const { virDomainFree(d); }
};
using DomainHandle = std::unique_ptr<virDomain, DomainFree>;

class LibvirtConnection {
 public:
  // virConnectOpen(uri) with keepalive (5 s, 3 misses), so a dead daemon is noticed.
  static absl::StatusOr<std::unique_ptr<LibvirtConnection>> Open(const std::string& uri);
  ~LibvirtConnection();
  LibvirtConnection(const LibvirtConnection&) = delete;
  LibvirtConnection& operator=(const LibvirtConnection&) = delete;

  virConnectPtr get() const { return conn_; }
  const std::string& uri() const { return uri_; }
  // "libvirt 9.0.0, QEMU 7.2.22": for logs.
  std::string Versions() const;

 private:
  LibvirtConnection(virConnectPtr conn, std::string uri) : conn_(conn), uri_(std::move(uri)) {}
  virConnectPtr conn_;
  std::string uri_;
};

}  // namespace kuasar::vmm
