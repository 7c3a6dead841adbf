#include "runtime/sandboxers/vmm/backend/shared_bundle.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/id_check.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/oci/rootfs_mount.h"

namespace kuasar {
namespace {

// /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo.
std::string UnescapeMountField(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const std::string oct = s.substr(i + 1, 3);
      if (oct.size() == 3 &&
          std::all_of(oct.begin(), oct.end(), [](char c) { return c >= '0' && c <= '7'; })) {
        out.push_back(static_cast<char>(std::stoi(oct, nullptr, 8)));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

bool IsBindMount(const nlohmann::json& m) {
  if (m.value("type", "") == "bind") return true;
  if (!m.contains("options") || !m["options"].is_array()) return false;
  for (const auto& o : m["options"]) {
    if (o.is_string() && (o == "bind" || o == "rbind")) return true;
  }
  return false;
}

bool IsReadOnly(const nlohmann::json& m) {
  if (!m.contains("options") || !m["options"].is_array()) return false;
  for (const auto& o : m["options"]) {
    if (o.is_string() && o == "ro") return true;
  }
  return false;
}

absl::Status BindInto(const std::string& source, const std::string& target, bool read_only) {
  struct stat st {};
  if (::stat(source.c_str(), &st) != 0) return ErrnoStatus(errno, "stat bind source", source);
  if (S_ISDIR(st.st_mode)) {
    if (::mkdir(target.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, "mkdir", target);
    }
  } else {
    int fd = ::open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return ErrnoStatus(errno, "create", target);
    ::close(fd);
  }
  if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return ErrnoStatus(errno, absl::StrFormat("bind %s onto", source), target);
  }
  // The guest's runtime makes its own bind read-only too; this keeps the host's copy safe
  // from a guest that would not.
  if (read_only &&
      ::mount(nullptr, target.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) {
    return ErrnoStatus(errno, "remount read-only", target);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> MountPointsUnder(const std::string& dir) {
  std::string root = dir;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return absl::InternalError("cannot read /proc/self/mountinfo");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, rel, mount_point;
    if (!(fields >> id >> parent >> dev >> rel >> mount_point)) continue;
    std::string mp = UnescapeMountField(mount_point);
    if (mp == root || mp.starts_with(root + "/")) out.push_back(mp);
  }
  // Deepest first; stacked mounts (the same path twice) stay twice.
  std::stable_sort(out.begin(), out.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return out;
}

absl::Status MakeSharedMountPoint(const std::string& dir) {
  ASSIGN_OR_RETURN(std::vector<std::string> mounts, MountPointsUnder(dir));
  bool mounted = std::find(mounts.begin(), mounts.end(), dir) != mounts.end();
  if (!mounted && ::mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return ErrnoStatus(errno, "bind onto itself", dir);
  }
  if (::mount(nullptr, dir.c_str(), nullptr, MS_SHARED, nullptr) != 0) {
    return ErrnoStatus(errno, "make shared", dir);
  }
  return absl::OkStatus();
}

absl::Status UnmountTree(const std::string& dir) {
  ASSIGN_OR_RETURN(std::vector<std::string> mounts, MountPointsUnder(dir));
  for (const std::string& mp : mounts) {
    if (::umount2(mp.c_str(), UMOUNT_NOFOLLOW) == 0 || errno == EINVAL || errno == ENOENT) {
      continue;
    }
    if (errno == EBUSY && ::umount2(mp.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) continue;
    return ErrnoStatus(errno, "umount", mp);
  }
  ASSIGN_OR_RETURN(mounts, MountPointsUnder(dir));
  if (!mounts.empty()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("still mounted under %s: %s", dir, absl::StrJoin(mounts, ", ")));
  }
  return absl::OkStatus();
}

absl::StatusOr<GuestSpec> RewriteSpecForGuest(nlohmann::json spec, const std::string& guest_dir) {
  if (!spec.is_object()) return absl::InvalidArgumentError("config.json is not an object");
  GuestSpec out;
  if (!spec.contains("root") || !spec["root"].is_object()) spec["root"] = nlohmann::json::object();
  spec["root"]["path"] = "rootfs";
  if (spec.contains("process") && spec["process"].is_object()) {
    spec["process"].erase("apparmorProfile");
    spec["process"].erase("selinuxLabel");
  }
  if (spec.contains("linux") && spec["linux"].is_object()) spec["linux"].erase("mountLabel");
  spec.erase("hooks");
  if (spec.contains("mounts") && spec["mounts"].is_array()) {
    nlohmann::json mounts = nlohmann::json::array();
    for (auto m : spec["mounts"]) {
      if (!m.is_object() || !IsBindMount(m)) {
        mounts.push_back(std::move(m));
        continue;
      }
      const std::string dst = m.value("destination", "");
      const std::string src = m.value("source", "");
      if (dst == "/etc/hosts" || dst == "/etc/hostname" || dst == "/etc/resolv.conf") continue;
      if (dst == "/dev/shm") {
        m["source"] = "/dev/shm";
      } else if (src.starts_with("/")) {
        std::string rel = absl::StrFormat("mounts/%d", out.binds.size());
        out.binds.push_back({src, rel, IsReadOnly(m)});
        m["source"] = guest_dir + "/" + rel;
      }
      mounts.push_back(std::move(m));
    }
    spec["mounts"] = std::move(mounts);
  }
  out.spec = std::move(spec);
  return out;
}

absl::StatusOr<std::string> ShareBundle(const std::string& host_shared,
                                        const std::string& guest_shared, const std::string& id,
                                        const std::string& host_bundle,
                                        const std::vector<MountSpec>& rootfs) {
  ASSIGN_OR_RETURN(std::string host_dir, PathUnder(host_shared, id, "container id"));
  const std::string guest_dir = guest_shared + "/" + id;
  ASSIGN_OR_RETURN(std::string raw, ReadSmallFile(host_bundle + "/config.json"));
  nlohmann::json parsed = nlohmann::json::parse(raw, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s/config.json is not valid JSON", host_bundle));
  }
  std::string host_root = parsed.contains("root") && parsed["root"].is_object()
                              ? parsed["root"].value("path", "rootfs")
                              : "rootfs";
  if (!host_root.starts_with("/")) host_root = host_bundle + "/" + host_root;
  ASSIGN_OR_RETURN(GuestSpec guest, RewriteSpecForGuest(std::move(parsed), guest_dir));

  RETURN_IF_ERROR(UnshareBundle(host_shared, id));  // a leftover of an earlier attempt
  auto attempt = [&]() -> absl::Status {
    RETURN_IF_ERROR(EnsurePrivateDirectory(host_dir, 0711));
    const std::string target = host_dir + "/rootfs";
    if (::mkdir(target.c_str(), 0755) != 0) return ErrnoStatus(errno, "mkdir", target);
    if (!rootfs.empty()) {
      RETURN_IF_ERROR(MountRootfs(rootfs, target));
    } else {
      RETURN_IF_ERROR(BindInto(host_root, target, false));  // containerd mounted it already
    }
    if (!guest.binds.empty()) {
      const std::string dir = host_dir + "/mounts";
      if (::mkdir(dir.c_str(), 0711) != 0) return ErrnoStatus(errno, "mkdir", dir);
    }
    for (const GuestBind& b : guest.binds) {
      RETURN_IF_ERROR(BindInto(b.host_source, host_dir + "/" + b.rel, b.read_only));
    }
    return WriteFileAtomically(host_dir + "/config.json", guest.spec.dump(), 0644);
  };
  if (absl::Status st = attempt(); !st.ok()) {
    if (absl::Status undo = UnshareBundle(host_shared, id); !undo.ok()) {
      spdlog::warn("container={} op=unshare-bundle error=\"{}\"", id, undo.message());
    }
    return Annotate(st, absl::StrFormat("container %s: share its bundle with the VM", id));
  }
  return guest_dir;
}

absl::Status UnshareBundle(const std::string& host_shared, const std::string& id) {
  ASSIGN_OR_RETURN(std::string host_dir, PathUnder(host_shared, id, "container id"));
  RETURN_IF_ERROR(UnmountTree(host_dir));
  std::error_code ec;
  std::filesystem::remove_all(host_dir, ec);
  if (ec) return absl::InternalError(absl::StrFormat("remove %s: %s", host_dir, ec.message()));
  return absl::OkStatus();
}

}  // namespace kuasar
