#include "runtime/base/process_identity.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/status_macros.h"

namespace kuasar {
namespace {

struct StatFields {
  char state = '?';
  uint64_t start_time = 0;
};

absl::StatusOr<StatFields> ReadStat(pid_t pid) {
  auto text = ReadSmallFile(absl::StrCat("/proc/", pid, "/stat"), 4096);
  if (!text.ok()) {
    return absl::NotFoundError(absl::StrCat("process ", pid, " is gone"));
  }
  // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
  size_t close = text->rfind(')');
  if (close == std::string::npos || close + 2 >= text->size()) {
    return absl::DataLossError(absl::StrCat("unparsable /proc/", pid, "/stat"));
  }
  std::vector<absl::string_view> f =
      absl::StrSplit(absl::string_view(*text).substr(close + 2), ' ');
  // f[0] is field 3 (state); field 22 (starttime) is f[19].
  if (f.size() < 20 || f[0].empty()) {
    return absl::DataLossError(absl::StrCat("short /proc/", pid, "/stat"));
  }
  StatFields s;
  s.state = f[0][0];
  if (!absl::SimpleAtoi(f[19], &s.start_time)) {
    return absl::DataLossError(absl::StrCat("bad starttime in /proc/", pid, "/stat"));
  }
  return s;
}

}  // namespace

absl::StatusOr<ProcessIdentity> IdentifyProcess(pid_t pid) {
  ASSIGN_OR_RETURN(StatFields s, ReadStat(pid));
  if (s.state == 'Z' || s.state == 'X') {
    return absl::NotFoundError(absl::StrCat("process ", pid, " has exited"));
  }
  return ProcessIdentity{pid, s.start_time};
}

bool IsSameProcessAlive(const ProcessIdentity& id) {
  auto now = IdentifyProcess(id.pid);
  return now.ok() && *now == id;
}

absl::StatusOr<UniqueFd> OpenPidfd(const ProcessIdentity& id) {
  UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, id.pid, 0)));
  if (!fd) return ErrnoStatus(errno, "pidfd_open", absl::StrCat(id.pid));
  if (!IsSameProcessAlive(id)) {
    return absl::NotFoundError(absl::StrCat("process ", id.pid, " is not the recorded one"));
  }
  return fd;
}

}  // namespace kuasar
