#include "runtime/sandboxers/runc/pod_files.h"

#include <sys/mount.h>
#include <sys/stat.h>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/status_macros.h"
#include "runtime/oci/rootfs_mount.h"

namespace kuasar {

absl::StatusOr<PodFiles> WritePodFiles(const PodSettings& s, const std::string& dir) {
  PodFiles f;
  if (!s.host_network) {
    std::string hostname = s.hostname.empty() ? "localhost" : s.hostname;
    f.hostname = dir + "/hostname";
    RETURN_IF_ERROR(WriteFileAtomically(f.hostname, hostname + "\n", 0644));
    f.hosts = dir + "/hosts";
    RETURN_IF_ERROR(WriteFileAtomically(
        f.hosts,
        absl::StrFormat("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                        "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
                        "ff02::2\tip6-allrouters\n"),
        0644));
  }
  std::string resolv;
  if (!s.dns_servers.empty() || !s.dns_searches.empty() || !s.dns_options.empty()) {
    for (const auto& srv : s.dns_servers) resolv += "nameserver " + srv + "\n";
    if (!s.dns_searches.empty()) resolv += "search " + absl::StrJoin(s.dns_searches, " ") + "\n";
    if (!s.dns_options.empty()) resolv += "options " + absl::StrJoin(s.dns_options, " ") + "\n";
  } else {
    auto host = ReadSmallFile("/etc/resolv.conf", 64 << 10);
    resolv = host.ok() ? *host : "";
  }
  f.resolv_conf = dir + "/resolv.conf";
  RETURN_IF_ERROR(WriteFileAtomically(f.resolv_conf, resolv, 0644));
  if (!s.host_ipc) {
    f.shm = dir + "/shm";
    if (::mkdir(f.shm.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoStatus(errno, "mkdir", f.shm);
    if (::mount("shm", f.shm.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                "mode=1777,size=65536k") != 0) {
      return ErrnoStatus(errno, "mount tmpfs", f.shm);
    }
  }
  return f;
}

void RemovePodFiles(const std::string& dir) { (void)UnmountAll(dir + "/shm"); }

}  // namespace kuasar
