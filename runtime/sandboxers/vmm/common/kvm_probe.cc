#include "runtime/sandboxers/vmm/common/kvm_probe.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/child_process.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"

namespace kuasar::vmm {
namespace {

using nlohmann::json;

constexpr std::string_view kMarker = "KUASAR_KVM_PROBE_OK";

// The last non-empty line of a console log, for the reason a guest did not come up.
std::string LastLine(const std::string& text) {
  absl::string_view v = absl::StripTrailingAsciiWhitespace(text);
  size_t nl = v.find_last_of('\n');
  absl::string_view line = nl == absl::string_view::npos ? v : v.substr(nl + 1);
  return std::string(absl::StripAsciiWhitespace(line).substr(0, 200));
}

std::string ReadOrEmpty(const std::string& path) {
  auto text = ReadSmallFile(path, 1 << 20);
  return text.ok() ? *text : std::string();
}

// Boots the image under KVM; the kernel passes what follows "--" to init, so busybox
// echoes the marker and exits; the kernel then panics and, with -no-reboot, QEMU exits.
KvmProbeResult BootUnderKvm(const KvmProbeOptions& o, const std::string& dir) {
  KvmProbeResult r;
  const std::string console = dir + "/console.log";
  const std::string errors = dir + "/qemu.err";
  std::vector<std::string> argv = {
      o.qemu_path,
      "-nodefaults",
      "-no-user-config",
      "-display",
      "none",
      "-no-reboot",
      "-machine",
      o.machine + ",accel=kvm",
      "-cpu",
      o.cpu_model,
      "-m",
      "128M",
      "-smp",
      "1",
      "-kernel",
      o.kernel_path,
      "-initrd",
      o.initrd_path,
      "-append",
      absl::StrFormat("console=ttyS0 panic=-1 rdinit=/bin/busybox -- echo %s", kMarker),
      "-serial",
      "file:" + console};
  UniqueFd err(::open(errors.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  SpawnOptions spawn;
  spawn.stderr_fd = err.get();
  spawn.stdout_fd = err.get();
  absl::Time start = absl::Now();
  auto child = ChildProcess::Spawn(argv, spawn);
  if (!child.ok()) {
    r.reason = absl::StrFormat("cannot run %s: %s", o.qemu_path, child.status().message());
    return r;
  }
  while (true) {
    std::string text = ReadOrEmpty(console);
    if (text.find(kMarker) != std::string::npos) {
      r.usable = true;
      r.reason = absl::StrFormat("guest userspace reached under KVM in %dms",
                                 absl::ToInt64Milliseconds(absl::Now() - start));
      break;
    }
    auto exited = child->WaitFor(std::chrono::milliseconds(20));
    if (exited.ok()) {
      text = ReadOrEmpty(console);
      if (text.find(kMarker) != std::string::npos) continue;  // printed as it exited
      std::string why = LastLine(ReadOrEmpty(errors));
      r.reason =
          absl::StrFormat("qemu -accel kvm exited with %d before the guest's userspace: %s",
                          ExitCodeFromWaitStatus(*exited), why.empty() ? LastLine(text) : why);
      break;
    }
    if (absl::Now() - start > o.timeout) {
      std::string last = LastLine(text);
      r.reason = absl::StrFormat(
          "the guest did not reach userspace under KVM within %s (a nested or broken KVM "
          "hangs it); console ended with: \"%s\"",
          absl::FormatDuration(o.timeout), last.empty() ? "(nothing)" : last);
      (void)child->Signal(SIGKILL);
      (void)child->Wait();
      break;
    }
  }
  r.took = absl::Now() - start;
  return r;
}

}  // namespace

absl::StatusOr<std::string> HostBootId() {
  ASSIGN_OR_RETURN(std::string id, ReadSmallFile("/proc/sys/kernel/random/boot_id", 128));
  return std::string(absl::StripAsciiWhitespace(absl::string_view(id)));
}

absl::Status CheckKvmDevice(const std::string& device) {
  UniqueFd kvm(::open(device.c_str(), O_RDWR | O_CLOEXEC));
  if (!kvm) return ErrnoStatus(errno, "open", device);
  int version = ::ioctl(kvm.get(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: KVM API version %d, expected %d", device, version, KVM_API_VERSION));
  }
  UniqueFd vm(::ioctl(kvm.get(), KVM_CREATE_VM, 0));
  if (!vm) return ErrnoStatus(errno, "ioctl KVM_CREATE_VM", device);
  return absl::OkStatus();
}

absl::StatusOr<KvmProbeResult> ProbeKvm(const KvmProbeOptions& o) {
  ASSIGN_OR_RETURN(std::string boot_id, HostBootId());
  json key = {{"boot_id", boot_id},      {"qemu", o.qemu_path},  {"kernel", o.kernel_path},
              {"initrd", o.initrd_path}, {"machine", o.machine}, {"cpu", o.cpu_model}};
  if (!o.cache_path.empty()) {
    json cached = json::parse(ReadOrEmpty(o.cache_path), nullptr, false);
    if (cached.is_object() && cached.value("key", json()) == key) {
      KvmProbeResult r;
      r.usable = cached.value("usable", false);
      r.reason = cached.value("reason", "");
      r.from_cache = true;
      return r;
    }
  }
  KvmProbeResult r;
  if (absl::Status dev = CheckKvmDevice(o.device); !dev.ok()) {
    r.reason = std::string(dev.message());
  } else if (::access(o.qemu_path.c_str(), X_OK) != 0) {
    return ErrnoStatus(errno, "access", o.qemu_path);
  } else if (::access(o.kernel_path.c_str(), R_OK) != 0 ||
             ::access(o.initrd_path.c_str(), R_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "KVM probe needs the guest image: %s and %s", o.kernel_path, o.initrd_path));
  } else {
    std::string tmpl = "/tmp/kuasar-kvm-probe.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus(errno, "mkdtemp", tmpl);
    r = BootUnderKvm(o, tmpl);
    std::error_code ec;
    std::filesystem::remove_all(tmpl, ec);
  }
  spdlog::info("op=kvm_probe usable={} ms={} reason=\"{}\"", r.usable,
               absl::ToInt64Milliseconds(r.took), r.reason);
  if (!o.cache_path.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(o.cache_path).parent_path(), ec);
    json record = {{"key", key},
                   {"usable", r.usable},
                   {"reason", r.reason},
                   {"took_ms", absl::ToInt64Milliseconds(r.took)}};
    absl::Status saved = WriteFileAtomically(o.cache_path, record.dump(2) + "\n", 0644);
    if (!saved.ok())
      spdlog::warn("op=kvm_probe cache={} error=\"{}\"", o.cache_path, saved.message());
  }
  return r;
}

}  // namespace kuasar::vmm
