#include "runtime/oci/rootfs_mount.h"

#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "runtime/base/status_macros.h"

namespace kuasar {
namespace {

struct FlagDef {
  bool clear;
  unsigned long flag;
};

const std::map<std::string, FlagDef>& FlagTable() {
  static const auto* table = new std::map<std::string, FlagDef>{
      {"async", {true, MS_SYNCHRONOUS}},   {"atime", {true, MS_NOATIME}},
      {"bind", {false, MS_BIND}},          {"defaults", {false, 0}},
      {"dev", {true, MS_NODEV}},           {"diratime", {true, MS_NODIRATIME}},
      {"dirsync", {false, MS_DIRSYNC}},    {"exec", {true, MS_NOEXEC}},
      {"mand", {false, MS_MANDLOCK}},      {"noatime", {false, MS_NOATIME}},
      {"nodev", {false, MS_NODEV}},        {"nodiratime", {false, MS_NODIRATIME}},
      {"noexec", {false, MS_NOEXEC}},      {"nomand", {true, MS_MANDLOCK}},
      {"norelatime", {true, MS_RELATIME}}, {"nostrictatime", {true, MS_STRICTATIME}},
      {"nosuid", {false, MS_NOSUID}},      {"rbind", {false, MS_BIND | MS_REC}},
      {"relatime", {false, MS_RELATIME}},  {"remount", {false, MS_REMOUNT}},
      {"ro", {false, MS_RDONLY}},          {"rw", {true, MS_RDONLY}},
      {"strictatime", {false, MS_STRICTATIME}}, {"suid", {true, MS_NOSUID}},
      {"sync", {false, MS_SYNCHRONOUS}},
      {"private", {false, MS_PRIVATE}},    {"rprivate", {false, MS_PRIVATE | MS_REC}},
      {"slave", {false, MS_SLAVE}},        {"rslave", {false, MS_SLAVE | MS_REC}},
      {"shared", {false, MS_SHARED}},      {"rshared", {false, MS_SHARED | MS_REC}},
  };
  return *table;
}

constexpr unsigned long kPropagation = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE;

// For overlay options past a page: the longest common directory of the lowerdirs, and
// the options rewritten relative to it.
bool CompactLowerdirs(std::vector<std::string>& data, std::string* chdir_to) {
  for (std::string& d : data) {
    if (!absl::StartsWith(d, "lowerdir=")) continue;
    std::vector<std::string> dirs = absl::StrSplit(d.substr(9), ':');
    if (dirs.empty()) return false;
    std::string common = dirs[0].substr(0, dirs[0].rfind('/'));
    for (const std::string& dir : dirs) {
      while (!common.empty() && !absl::StartsWith(dir, common + "/")) {
        common = common.substr(0, common.rfind('/'));
      }
    }
    if (common.empty()) return false;
    for (std::string& dir : dirs) dir = dir.substr(common.size() + 1);
    d = "lowerdir=" + absl::StrJoin(dirs, ":");
    *chdir_to = common;
    return true;
  }
  return false;
}

absl::Status MountOne(const MountSpec& m, const std::string& target) {
  ASSIGN_OR_RETURN(ParsedMountOptions opt, ParseMountOptions(m.options));
  std::string data = absl::StrJoin(opt.data, ",");
  std::string chdir_to;
  if (m.type == "overlay" && data.size() >= 4096 - 512) {
    if (!CompactLowerdirs(opt.data, &chdir_to)) {
      return absl::InvalidArgumentError("overlay options exceed a page and cannot be shortened");
    }
    data = absl::StrJoin(opt.data, ",");
  }
  if (data.size() >= 4096) return absl::InvalidArgumentError("mount options are too long");
  if (chdir_to.empty()) {
    if (::mount(m.source.c_str(), target.c_str(), m.type.c_str(), opt.flags, data.c_str()) != 0) {
      return ErrnoStatus(errno, "mount", absl::StrFormat("%s (%s) on %s", m.source, m.type, target));
    }
  } else {
    // chdir is process-wide: do it in a short-lived child, which shares our mount namespace.
    pid_t pid = ::fork();
    if (pid < 0) return ErrnoStatus(errno, "fork");
    if (pid == 0) {
      if (::chdir(chdir_to.c_str()) != 0) _exit(100 + errno % 100);
      if (::mount(m.source.c_str(), target.c_str(), m.type.c_str(), opt.flags, data.c_str()) != 0) {
        _exit(errno % 100);
      }
      _exit(0);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      int code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
      return ErrnoStatus(code >= 100 ? code - 100 : code, code >= 100 ? "chdir" : "mount",
                         code >= 100 ? chdir_to : target);
    }
  }
  if (opt.propagation != 0) {
    if (::mount("", target.c_str(), "", opt.propagation | MS_REC, nullptr) != 0) {
      return ErrnoStatus(errno, "mount propagation", target);
    }
  }
  // A read-only bind needs a remount to take effect.
  if ((opt.flags & MS_BIND) && (opt.flags & MS_RDONLY)) {
    if (::mount("", target.c_str(), "", opt.flags | MS_REMOUNT, nullptr) != 0) {
      return ErrnoStatus(errno, "remount ro", target);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ParsedMountOptions> ParseMountOptions(const std::vector<std::string>& options) {
  ParsedMountOptions out;
  for (const std::string& o : options) {
    if (absl::StartsWith(o, "X-containerd.")) {
      return absl::InvalidArgumentError(
          absl::StrFormat("internal mount option \"%s\" reached the runtime", o));
    }
    auto it = FlagTable().find(o);
    if (it == FlagTable().end() || it->second.flag == 0) {
      if (it == FlagTable().end()) out.data.push_back(o);
      continue;
    }
    unsigned long f = it->second.flag;
    if (f & kPropagation) {
      out.propagation |= f;
    } else if (it->second.clear) {
      out.flags &= ~f;
    } else {
      out.flags |= f;
    }
  }
  return out;
}

absl::Status MountRootfs(const std::vector<MountSpec>& mounts, const std::string& target) {
  for (const MountSpec& m : mounts) {
    if (m.type.empty() && m.source.empty()) continue;
    if (absl::Status st = MountOne(m, target); !st.ok()) {
      (void)UnmountAll(target);
      return st;
    }
  }
  return absl::OkStatus();
}

absl::Status UnmountAll(const std::string& target) {
  for (int i = 0; i < 64; ++i) {
    if (::umount2(target.c_str(), UMOUNT_NOFOLLOW) == 0) continue;
    if (errno == EINVAL || errno == ENOENT) return absl::OkStatus();  // nothing mounted
    if (errno == EBUSY) {
      if (::umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) continue;
    }
    return ErrnoStatus(errno, "umount", target);
  }
  return absl::InternalError(absl::StrFormat("%s: too many stacked mounts", target));
}

}  // namespace kuasar
