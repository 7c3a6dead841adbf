#include "runtime/base/socket_path.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/unique_fd.h"

namespace kuasar {

absl::Status PrepareSocketPath(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path ", path, " is ", path.size(),
                                                   " bytes; the limit is ",
                                                   sizeof(addr.sun_path) - 1));
  }
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    if (!std::filesystem::exists(parent, ec)) {
      std::filesystem::create_directories(parent, ec);
      if (ec) return absl::InternalError(absl::StrCat("mkdir ", parent.string(), ": ", ec.message()));
      ::chmod(parent.c_str(), 0700);
    }
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, "lstat", path);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a socket; refusing to replace it"));
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    return absl::AlreadyExistsError(absl::StrCat("another process is listening on ", path));
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus(errno, "unlink", path);
  return absl::OkStatus();
}

absl::Status SetSocketAccess(const std::string& path, unsigned mode, std::string_view group) {
  if (!group.empty()) {
    gid_t gid;
    unsigned parsed = 0;
    if (absl::SimpleAtoi(absl::string_view(group.data(), group.size()), &parsed)) {
      gid = parsed;
    } else {
      std::string name(group);
      struct group* g = ::getgrnam(name.c_str());
      if (g == nullptr) return absl::NotFoundError(absl::StrFormat("socket group %s not found", group));
      gid = g->gr_gid;
    }
    if (::chown(path.c_str(), static_cast<uid_t>(-1), gid) != 0) {
      return ErrnoStatus(errno, "chown", path);
    }
  }
  if (::chmod(path.c_str(), mode) != 0) return ErrnoStatus(errno, "chmod", path);
  return absl::OkStatus();
}

std::string SocketDirFor(std::string_view root, std::string_view id) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a: stable across builds and restarts
  for (unsigned char c : id) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return absl::StrFormat("%s/s/%016x", root, h);
}

absl::Status CheckSocketDirFits(std::string_view dir, size_t longest_name) {
  if (dir.size() + 1 + longest_name >= sizeof(sockaddr_un{}.sun_path)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "socket dir %s is too long for unix sockets (limit 107 bytes); use a shorter "
        "[sandboxer] state_dir", dir));
  }
  return absl::OkStatus();
}

}  // namespace kuasar
