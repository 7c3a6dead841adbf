#include "runtime/oci/testing/test_bundle.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/status_macros.h"

namespace kuasar::testing {
namespace {

nlohmann::json BaseSpec() {
  return nlohmann::json::parse(R"({
    "ociVersion": "1.0.2",
    "process": {
      "terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["/testinit"],
      "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "FOO=bar"],
      "cwd": "/",
      "capabilities": {
        "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"],
        "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"],
        "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"]},
      "noNewPrivileges": true
    },
    "root": {"path": "rootfs", "readonly": false},
    "hostname": "",
    "mounts": [
      {"destination": "/proc", "type": "proc", "source": "proc"},
      {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
       "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
      {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
       "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
      {"destination": "/sys", "type": "sysfs", "source": "sysfs",
       "options": ["nosuid", "noexec", "nodev", "ro"]}
    ],
    "linux": {
      "resources": {"devices": [{"allow": false, "access": "rwm"}]},
      "namespaces": [{"type": "mount"}],
      "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
      "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
    }
  })");
}

}  // namespace

std::string TestRootfs() { return KUASAR_TEST_ROOTFS; }

absl::StatusOr<std::vector<MountSpec>> WriteBundle(const std::string& dir, const BundleOptions& o) {
  ::mkdir(dir.c_str(), 0711);
  ::mkdir((dir + "/rootfs").c_str(), 0755);
  nlohmann::json spec = BaseSpec();
  spec["process"]["args"] = o.args;
  spec["process"]["terminal"] = o.terminal;
  auto& ns = spec["linux"]["namespaces"];
  auto join = [&](const char* type, const char* file) {
    ns.push_back({{"type", type}, {"path", absl::StrFormat("/proc/%d/ns/%s", o.sandbox_pid, file)}});
  };
  if (o.sandbox_pid > 0) {
    join("ipc", "ipc");
    join("uts", "uts");
    join("network", "net");
    if (o.share_pid) join("pid", "pid");
  }
  if (!o.share_pid) ns.push_back({{"type", "pid"}});
  spec["linux"]["cgroupsPath"] =
      o.cgroups_path.empty() ? absl::StrFormat("/kuasar-test/%s", o.id) : o.cgroups_path;
  if (o.memory_limit > 0) spec["linux"]["resources"]["memory"] = {{"limit", o.memory_limit}};
  RETURN_IF_ERROR(WriteFileAtomically(dir + "/config.json", spec.dump(2), 0644));
  // An overlay over the shared test rootfs, as containerd's overlayfs snapshotter gives.
  ::mkdir((dir + "/upper").c_str(), 0755);
  ::mkdir((dir + "/work").c_str(), 0755);
  return std::vector<MountSpec>{{"overlay", "overlay", "",
                                 {"lowerdir=" + TestRootfs(), "upperdir=" + dir + "/upper",
                                  "workdir=" + dir + "/work"}}};
}

std::string ProcessJson(const std::vector<std::string>& args, bool terminal) {
  nlohmann::json p = {{"terminal", terminal},
                      {"user", {{"uid", 0}, {"gid", 0}}},
                      {"args", args},
                      {"env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
                      {"cwd", "/"}};
  return p.dump();
}

}  // namespace kuasar::testing
