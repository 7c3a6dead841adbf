#include "runtime/sandboxers/vmm/libvirt/testing/private_libvirtd.h"

#include <fcntl.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/status_macros.h"

namespace kuasar::vmm::testing {
namespace {

// The host paths libvirtd uses, each replaced by <root>/<name>.
constexpr std::array<std::pair<const char*, const char*>, 5> kMounts = {{
    {"etc", "/etc/libvirt"},
    {"run", "/run/libvirt"},
    {"lib", "/var/lib/libvirt"},
    {"log", "/var/log/libvirt"},
    {"cache", "/var/cache/libvirt"},
}};

// QEMU's stdio to a file rather than virtlogd (not running here); no cgroups or
// per-domain /dev namespace (a container's cgroup tree is not ours to shape); no
// AppArmor/SELinux. QEMU's user stays libvirt's default: the driver's domain XML is what
// makes it run as root.
constexpr char kQemuConf[] =
    "stdio_handler = \"file\"\n"
    "cgroup_controllers = [ ]\n"
    "namespaces = [ ]\n"
    "security_driver = \"none\"\n";

std::string ErrorLines(const std::string& log) {
  auto text = ReadSmallFile(log, 1 << 20);
  if (!text.ok()) return "(no log)";
  std::vector<std::string> errors;
  std::vector<std::string> lines = absl::StrSplit(*text, '\n');
  for (const std::string& line : lines) {
    // libvirtd reports missing optional tools (dnsmasq, dmidecode, D-Bus) as errors too.
    if (line.find("error") != std::string::npos &&
        line.find("dnsmasq") == std::string::npos &&
        line.find("DBus") == std::string::npos &&
        line.find("dmidecode") == std::string::npos &&
        line.find("DMI") == std::string::npos && line.find("bus") == std::string::npos) {
      errors.emplace_back(line);
    }
  }
  if (errors.size() > 4) errors.erase(errors.begin(), errors.end() - 4);
  return errors.empty() ? "(no error in the log)" : absl::StrJoin(errors, " | ");
}

// In the forked child: only system calls until exec; a failure is written to the log.
[[noreturn]] void ExecInPrivateNamespace(const std::vector<std::string>& sources,
                                         const char* const* argv, int log_fd) {
  auto die = [log_fd](const char* what) {
    char buf[256];
    int n = snprintf(buf, sizeof buf, "private libvirtd: %s: error %s\n", what, strerror(errno));
    if (n > 0) (void)!::write(log_fd, buf, static_cast<size_t>(n));
    _exit(127);
  };
  if (::unshare(CLONE_NEWNS) != 0) die("unshare(CLONE_NEWNS)");
  // Slave, not private: where the host's / is shared, mounts made there later (the
  // sandboxer's bind mounts into a shared dir) still reach virtiofsd; ours never leak out.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) die("mount / rslave");
  for (size_t i = 0; i < kMounts.size(); ++i) {
    if (::mount(sources[i].c_str(), kMounts[i].second, nullptr, MS_BIND, nullptr) != 0) {
      die(kMounts[i].second);
    }
  }
  ::dup2(log_fd, 1);
  ::dup2(log_fd, 2);
  int null = ::open("/dev/null", O_RDONLY);
  if (null >= 0) ::dup2(null, 0);
  ::execv(argv[0], const_cast<char* const*>(argv));
  die("execv libvirtd");
  _exit(127);  // die does not return; this tells the compiler
}

}  // namespace

absl::StatusOr<std::unique_ptr<PrivateLibvirtd>> PrivateLibvirtd::Start(const std::string& root) {
  if (::geteuid() != 0) return absl::FailedPreconditionError("a private libvirtd needs root");
  if (::access(kLibvirtd, X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s missing: apt-get install libvirt-daemon-system libvirt-daemon-driver-qemu "
        "(ci/install-vm-deps)",
        kLibvirtd));
  }
  std::vector<std::string> sources;
  for (const auto& [name, target] : kMounts) {
    sources.push_back(absl::StrFormat("%s/%s", root, name));
    if (::mkdir(sources.back().c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, "mkdir", sources.back());
    }
    // The mount points themselves (empty dirs when libvirt is not installed system-wide).
    if (::mkdir(target, 0755) != 0 && errno != EEXIST) return ErrnoStatus(errno, "mkdir", target);
  }
  RETURN_IF_ERROR(::mkdir((root + "/sock").c_str(), 0700) == 0 || errno == EEXIST
                      ? absl::OkStatus()
                      : ErrnoStatus(errno, "mkdir", root + "/sock"));
  RETURN_IF_ERROR(WriteFileAtomically(
      root + "/etc/libvirtd.conf",
      absl::StrFormat("unix_sock_dir = \"%s/sock\"\nunix_sock_rw_perms = \"0700\"\n"
                      "auth_unix_rw = \"none\"\nauth_unix_ro = \"none\"\n"
                      "log_outputs = \"3:stderr\"\n",
                      root)));
  RETURN_IF_ERROR(WriteFileAtomically(root + "/etc/qemu.conf", kQemuConf));

  std::string log = root + "/libvirtd.log";
  int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (log_fd < 0) return ErrnoStatus(errno, "open", log);
  std::string pid_file = root + "/libvirtd.pid";
  std::vector<std::string> args = {kLibvirtd, "--config", "/etc/libvirt/libvirtd.conf",
                                   "--pid-file", pid_file};
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return ErrnoStatus(errno, "fork");
  }
  if (pid == 0) {
    ::fcntl(log_fd, F_SETFD, 0);
    ExecInPrivateNamespace(sources, argv.data(), log_fd);
  }
  ::close(log_fd);
  auto daemon = std::unique_ptr<PrivateLibvirtd>(new PrivateLibvirtd(root, pid));

  // Ready when its socket answers and the QEMU driver is loaded.
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  std::string why = "its socket did not appear in 30 s";
  while (absl::Now() < deadline) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      daemon->pid_ = -1;
      return absl::UnavailableError(
          absl::StrFormat("libvirtd exited (status %d) at start: %s", status, ErrorLines(log)));
    }
    if (::access((root + "/sock/libvirt-sock").c_str(), F_OK) == 0) {
      virConnectPtr conn = virConnectOpen(daemon->uri().c_str());
      if (conn != nullptr) {
        virConnectClose(conn);
        return daemon;
      }
      virErrorPtr e = virGetLastError();
      why = absl::StrFormat("%s does not answer: %s", daemon->uri(),
                            e && e->message ? e->message : "?");
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::UnavailableError(absl::StrFormat("libvirtd: %s; %s", why, ErrorLines(log)));
}

PrivateLibvirtd::~PrivateLibvirtd() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

std::string PrivateLibvirtd::uri() const {
  return absl::StrFormat("qemu:///system?socket=%s/sock/libvirt-sock", root_);
}

std::string PrivateLibvirtd::QemuLog(const std::string& domain) const {
  return absl::StrFormat("%s/log/qemu/%s.log", root_, domain);
}

}  // namespace kuasar::vmm::testing
