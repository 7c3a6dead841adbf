#include "runtime/sandboxers/vmm/common/testing/leftovers.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_format.h"
#include "runtime/base/atomic_file.h"

namespace kuasar::vmm::testing {

std::vector<pid_t> ProcessesMentioning(const std::string& needle) {
  std::vector<pid_t> out;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = ::readdir(proc)) {
    pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0 || pid == ::getpid()) continue;
    // A process may exit while we read (ESRCH): it is then no leftover.
    absl::StatusOr<std::string> cmdline = ReadSmallFile(absl::StrFormat("/proc/%d/cmdline", pid));
    if (cmdline.ok() && cmdline->find(needle) != std::string::npos) out.push_back(pid);
  }
  ::closedir(proc);
  return out;
}

std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  ::closedir(d);
  return out;
}

}  // namespace kuasar::vmm::testing
