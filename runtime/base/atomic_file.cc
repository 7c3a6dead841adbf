#include "runtime/base/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "runtime/base/fault_point.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/unique_fd.h"

namespace kuasar {
namespace {

absl::Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SyncDirectory(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open", dir);
  if (::fsync(fd.get()) != 0) return ErrnoStatus(errno, "fsync", dir);
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view contents,
                                 mode_t mode) {
  static std::atomic<uint64_t> counter{0};
  std::filesystem::path p(path);
  std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
  // Temp names start with '.' and end in ".tmp" so loaders can skip and sweep them.
  std::string tmp = absl::StrCat(dir, "/.", p.filename().string(), ".", ::getpid(), ".",
                                 counter.fetch_add(1), ".tmp");
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd) return ErrnoStatus(errno, "create", tmp);
  auto cleanup_on_error = [&](absl::Status st) {
    ::unlink(tmp.c_str());
    return st;
  };
  if (absl::Status st = WriteAll(fd.get(), contents, tmp); !st.ok()) {
    return cleanup_on_error(st);
  }
  KUASAR_FAULT_POINT("atomic_file.before_fsync");
  if (::fsync(fd.get()) != 0) return cleanup_on_error(ErrnoStatus(errno, "fsync", tmp));
  fd.Reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return cleanup_on_error(ErrnoStatus(errno, "rename", absl::StrCat(tmp, " -> ", path)));
  }
  return SyncDirectory(dir);
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return ErrnoStatus(errno, "open", path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "stat", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  // Read to EOF rather than trusting st_size, and bound what is read instead: /proc files
  // report 0 and sysfs attributes 4096 whatever they hold (a 256-byte limit on
  // /sys/class/net/*/address must not refuse it).
  std::string out;
  size_t off = 0;
  while (true) {
    if (out.size() - off < 4096) out.resize(off + 4096);
    ssize_t n = ::read(fd.get(), out.data() + off, out.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read", path);
    }
    if (n == 0) break;
    off += static_cast<size_t>(n);
    if (off > max_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat(path, ": more than the limit of ", max_bytes, " bytes"));
    }
  }
  out.resize(off);
  return out;
}

}  // namespace kuasar
