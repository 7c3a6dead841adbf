#include "runtime/sandboxers/vmm/libvirt/libvirt_connection.h"

#include <libvirt/virterror.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
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

// The event loop's thread. libvirt cannot unregister its default loop, so the thread runs
// until the process exits, and is stopped and joined there (an atexit handler) before
// static destructors run: a domain event must not be logged while spdlog's registry is
// being torn down. A periodic no-op timeout bounds each loop iteration, so the stop flag
// is seen within one period.
struct EventLoop {
  std::atomic<bool> stop{false};
  std::thread thread;
  pid_t pid = ::getpid();  // a forked child inherits the handler, not the thread
};
EventLoop* loop = nullptr;
constexpr int kLoopPeriodMs = 200;

void StopEventLoop() {
  if (::getpid() != loop->pid) return;
  loop->stop.store(true);
  if (loop->thread.joinable()) loop->thread.join();
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
    if (virEventAddTimeout(kLoopPeriodMs, [](int, void*) {}, nullptr, nullptr) < 0) {
      spdlog::error("op=libvirt_event_loop error=\"{}\"",
                    LibvirtError("virEventAddTimeout").message());
      return;
    }
    // spdlog's registry exists before the handler is registered, so it is destroyed after
    // the handler has joined the thread (exit runs them in reverse order).
    spdlog::default_logger();
    loop = new EventLoop();  // never freed: the handler may run as late as exit itself
    loop->thread = std::thread([] {
      while (!loop->stop.load()) {
        if (virEventRunDefaultImpl() < 0) {
          spdlog::warn("op=libvirt_event_loop error=\"{}\"",
                       LibvirtError("virEventRunDefaultImpl").message());
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
    });
    std::atexit(StopEventLoop);
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
