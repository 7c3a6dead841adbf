#include "runtime/sandboxers/vmm/libvirt/libvirt_connection.h"

#include <libvirt/virterror.h>

#include <mutex>
#include <thread>

#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"

namespace kuasar::vmm {
namespace {

void IgnoreError(void*, virErrorPtr) {}

std::string VersionString(unsigned long v) {
  return absl::StrFormat("%d.%d.%d", v / 1000000, (v / 1000) % 1000, v % 1000);
}

}  // namespace

void EnsureLibvirtEventLoop() {
  static std::once_flag once;
  std::call_once(once, [] {
    virSetErrorFunc(nullptr, IgnoreError);
    if (virEventRegisterDefaultImpl() < 0) {
      spdlog::error("op=libvirt_event_loop error=\"{}\"",
                    LibvirtError("virEventRegisterDefaultImpl").message());
      return;
    }
    // Runs until the process ends: libvirt cannot unregister its default loop.
    std::thread([] {
      for (;;) {
        if (virEventRunDefaultImpl() < 0) {
          spdlog::warn("op=libvirt_event_loop error=\"{}\"",
                       LibvirtError("virEventRunDefaultImpl").message());
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
    }).detach();
  });
}

absl::Status LibvirtError(std::string_view what) {
  virErrorPtr e = virGetLastError();
  std::string message = absl::StrFormat("%s: %s", what, e && e->message ? e->message : "failed");
  int code = e ? e->code : VIR_ERR_INTERNAL_ERROR;
  virResetLastError();
  switch (code) {
    case VIR_ERR_NO_DOMAIN:
      return absl::NotFoundError(message);
    case VIR_ERR_OPERATION_INVALID:
      return absl::FailedPreconditionError(message);
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_SYSTEM_ERROR:
    case VIR_ERR_RPC:
    case VIR_ERR_AUTH_FAILED:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::StatusOr<std::unique_ptr<LibvirtConnection>> LibvirtConnection::Open(const std::string& uri) {
  EnsureLibvirtEventLoop();
  virConnectPtr conn = virConnectOpen(uri.c_str());
  if (conn == nullptr) {
    absl::Status st = LibvirtError(absl::StrFormat("virConnectOpen %s", uri));
    return absl::UnavailableError(absl::StrFormat("%s (is libvirtd running?)", st.message()));
  }
  if (virConnectSetKeepAlive(conn, 5, 3) < 0) {
    spdlog::debug("op=libvirt_keepalive uri={} error=\"{}\"", uri,
                  LibvirtError("virConnectSetKeepAlive").message());
  }
  return std::unique_ptr<LibvirtConnection>(new LibvirtConnection(conn, uri));
}

LibvirtConnection::~LibvirtConnection() { virConnectClose(conn_); }

std::string LibvirtConnection::Versions() const {
  unsigned long lib = 0, hv = 0;
  std::string out = "libvirt ?";
  if (virConnectGetLibVersion(conn_, &lib) == 0) out = "libvirt " + VersionString(lib);
  if (virConnectGetVersion(conn_, &hv) == 0) out += ", QEMU " + VersionString(hv);
  virResetLastError();
  return out;
}

}  // namespace kuasar::vmm
