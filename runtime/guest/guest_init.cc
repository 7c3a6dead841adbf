#include "runtime/guest/guest_init.h"

#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/unique_fd.h"

namespace kuasar::guest {
namespace {

bool IsMountPoint(const std::string& path) {
  struct stat st {
  }, parent{};
  if (::stat(path.c_str(), &st) != 0) return false;
  std::string up = path == "/" ? "/" : std::filesystem::path(path).parent_path().string();
  if (::stat(up.c_str(), &parent) != 0) return false;
  return st.st_dev != parent.st_dev || path == "/";
}

absl::Status Mount(const char* source, const std::string& target, const char* type,
                   unsigned long flags, const char* data) {
  std::error_code ec;
  std::filesystem::create_directories(target, ec);
  if (IsMountPoint(target)) return absl::OkStatus();  // the kernel or an initramfs did it
  if (::mount(source, target.c_str(), type, flags, data) != 0) {
    return ErrnoStatus(errno, absl::StrFormat("mount %s", type), target);
  }
  return absl::OkStatus();
}

constexpr unsigned long kSafe = MS_NOSUID | MS_NODEV | MS_NOEXEC;

void MountCgroups() {
  auto filesystems = ReadSmallFile("/proc/filesystems", 64 << 10);
  const std::string root = "/sys/fs/cgroup";
  if (filesystems.ok() && absl::StrContains(*filesystems, "\tcgroup2\n")) {
    if (absl::Status st = Mount("cgroup2", root, "cgroup2", kSafe, nullptr); !st.ok()) {
      spdlog::warn("op=init step=cgroup2 error=\"{}\"", st.message());
      return;
    }
    // Hand every controller down, so containers' cgroups can use them.
    auto controllers = ReadSmallFile(root + "/cgroup.controllers", 4096);
    if (!controllers.ok()) return;
    for (absl::string_view c :
         absl::StrSplit(*controllers, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
      UniqueFd fd(::open((root + "/cgroup.subtree_control").c_str(), O_WRONLY | O_CLOEXEC));
      std::string op = absl::StrFormat("+%s", c);
      if (!fd || ::write(fd.get(), op.data(), op.size()) < 0) {
        spdlog::debug("op=init step=cgroup2-enable controller={} errno={}", c, errno);
      }
    }
    return;
  }
  if (absl::Status st = Mount("cgroup", root, "tmpfs", kSafe, "mode=0755"); !st.ok()) {
    spdlog::warn("op=init step=cgroup-root error=\"{}\"", st.message());
    return;
  }
  auto cgroups = ReadSmallFile("/proc/cgroups", 64 << 10);
  if (!cgroups.ok()) return;
  for (absl::string_view line : absl::StrSplit(*cgroups, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "#")) continue;
    std::vector<std::string> f = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.size() < 4 || f[3] != "1") continue;
    if (absl::Status st = Mount("cgroup", root + "/" + f[0], "cgroup", kSafe, f[0].c_str());
        !st.ok()) {
      spdlog::warn("op=init step=cgroup-v1 controller={} error=\"{}\"", f[0], st.message());
    }
  }
}

void BringUpLoopback() {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (!s || ::ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) {
    spdlog::warn("op=init step=lo errno={}", errno);
    return;
  }
  ifr.ifr_flags |= IFF_UP;
  if (::ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0) spdlog::warn("op=init step=lo-up errno={}", errno);
}

void MountShare() {
  auto cmdline = ReadSmallFile("/proc/cmdline", 64 << 10);
  if (!cmdline.ok()) return;
  std::string kind = KernelParameter(*cmdline, "task.sharefs_type");
  absl::Status st;
  if (kind == "virtiofs") {
    st = Mount("kuasar", kGuestSharedDir, "virtiofs", MS_NOSUID | MS_NODEV, nullptr);
  } else if (kind == "9p") {
    st = Mount("kuasar", kGuestSharedDir, "9p", MS_NOSUID | MS_NODEV,
               "trans=virtio,version=9p2000.L,msize=262144");
  } else {
    return;
  }
  if (!st.ok()) spdlog::warn("op=init step=share type={} error=\"{}\"", kind, st.message());
}

absl::Status InitVm() {
  RETURN_IF_ERROR(Mount("proc", "/proc", "proc", kSafe, nullptr));
  RETURN_IF_ERROR(Mount("sysfs", "/sys", "sysfs", kSafe, nullptr));
  RETURN_IF_ERROR(Mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755"));
  RETURN_IF_ERROR(Mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                        "newinstance,ptmxmode=0666,mode=0620"));
  RETURN_IF_ERROR(Mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
  RETURN_IF_ERROR(Mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"));
  RETURN_IF_ERROR(Mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
  for (auto [link, target] :
       {std::pair{"/dev/fd", "/proc/self/fd"}, std::pair{"/dev/stdin", "/proc/self/fd/0"},
        std::pair{"/dev/stdout", "/proc/self/fd/1"}, std::pair{"/dev/stderr", "/proc/self/fd/2"}}) {
    (void)::symlink(target, link);
  }
  // The sandboxer's kernel command line carries the agent's log level (debug boots).
  if (auto cmdline = ReadSmallFile("/proc/cmdline", 64 << 10); cmdline.ok()) {
    std::string level = KernelParameter(*cmdline, "task.log_level");
    if (!level.empty() && spdlog::level::from_str(level) != spdlog::level::off) {
      spdlog::set_level(spdlog::level::from_str(level));
    }
  }
  MountCgroups();
  int loaded = LoadKernelModules(kModulesList);
  BringUpLoopback();
  MountShare();
  if (std::getenv("PATH") == nullptr) ::setenv("PATH", "/sbin:/bin:/usr/sbin:/usr/bin", 1);
  spdlog::info("op=init mode=vm modules={}", loaded);
  return absl::OkStatus();
}

absl::Status InitNamespace() {
  // Our mounts must not leak to the host, while the host's (container rootfs shares)
  // still reach us.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    return ErrnoStatus(errno, "mount --make-rslave", "/");
  }
  // The host's /proc shows the host's pid namespace; ours needs its own.
  if (::mount("proc", "/proc", "proc", kSafe, nullptr) != 0) {
    return ErrnoStatus(errno, "mount proc", "/proc");
  }
  spdlog::info("op=init mode=namespace");
  return absl::OkStatus();
}

}  // namespace

std::string KernelParameter(std::string_view cmdline, std::string_view key) {
  for (absl::string_view arg : absl::StrSplit(absl::string_view(cmdline.data(), cmdline.size()),
                                              absl::ByAnyChar(" \t\n"), absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&arg, absl::string_view(key.data(), key.size())) &&
        absl::ConsumePrefix(&arg, "=")) {
      return std::string(arg);
    }
  }
  return "";
}

int LoadKernelModules(const std::string& list_path) {
  auto list = ReadSmallFile(list_path, 1 << 20);
  if (!list.ok()) return 0;
  int loaded = 0;
  for (absl::string_view line : absl::StrSplit(*list, '\n', absl::SkipEmpty())) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::string path(line);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      spdlog::warn("op=load-module path={} error=\"{}\"", path, std::strerror(errno));
      continue;
    }
    if (::syscall(SYS_finit_module, fd.get(), "", 0) != 0 && errno != EEXIST) {
      spdlog::warn("op=load-module path={} error=\"{}\"", path, std::strerror(errno));
      continue;
    }
    ++loaded;
  }
  return loaded;
}

bool RootIsInitialRamfs() {
  auto mountinfo = ReadSmallFile("/proc/self/mountinfo", 1 << 20);
  if (!mountinfo.ok()) return false;
  for (absl::string_view line : absl::StrSplit(*mountinfo, '\n', absl::SkipEmpty())) {
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS] - FSTYPE SOURCE SUPER"
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    if (f.size() < 5 || f[4] != "/") continue;
    size_t dash = line.find(" - ");
    if (dash != absl::string_view::npos && absl::StartsWith(line.substr(dash + 3), "rootfs ")) {
      return true;
    }
  }
  return false;
}

absl::Status InitGuest(InitMode mode) {
  bool pid1 = ::getpid() == 1;
  // Both modes mount over /proc (and vm over much more): run anywhere but as PID 1 of
  // its own namespaces, they would rearrange the host's.
  if (mode != InitMode::kNone && !pid1) {
    return absl::FailedPreconditionError(
        absl::StrFormat("--init %s must run as PID 1 (of a VM, or of new pid and mount namespaces)",
                        InitModeName(mode)));
  }
  if (!pid1 && ::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    return ErrnoStatus(errno, "prctl PR_SET_CHILD_SUBREAPER");
  }
  switch (mode) {
    case InitMode::kVm:
      return InitVm();
    case InitMode::kNamespace:
      return InitNamespace();
    case InitMode::kNone:
      break;
  }
  return absl::OkStatus();
}

void PowerOff() {
  ::sync();
  // Never from an ordinary process: that would power off the host.
  if (::getpid() != 1) ::_exit(0);
  ::reboot(RB_POWER_OFF);
  // Only reached without CAP_SYS_BOOT; PID 1 must not return.
  spdlog::critical("op=poweroff error=\"{}\"", std::strerror(errno));
  for (;;) ::pause();
}

}  // namespace kuasar::guest
