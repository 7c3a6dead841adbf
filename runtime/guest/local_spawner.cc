#include "runtime/guest/local_spawner.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/base/status_macros.h"

extern char** environ;

namespace kuasar::guest {
namespace {

std::vector<char*> CStrings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

absl::StatusOr<pid_t> LocalSpawner::Spawn(const std::vector<std::string>& argv,
                                          std::array<int, 3> stdio) {
  LocalSpawnOptions o;
  o.stdio = stdio;
  return SpawnWith(argv, o);
}

absl::StatusOr<pid_t> LocalSpawner::SpawnWith(const std::vector<std::string>& argv,
                                              const LocalSpawnOptions& options) {
  if (argv.empty() || argv[0].empty()) return absl::InvalidArgumentError("spawn: empty argv");
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  for (int i = 0; i < 3; ++i) {
    if (options.stdio[i] >= 0) {
      posix_spawn_file_actions_adddup2(&actions, options.stdio[i], i);
    } else {
      posix_spawn_file_actions_addopen(&actions, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
    }
  }
  // The agent blocks SIGCHLD/SIGTERM for its signalfds; a child starts with none blocked
  // and default dispositions (SIGPIPE is ignored in the agent).
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  if (options.new_process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&attr, 0);
  }
  posix_spawnattr_setflags(&attr, flags);
  std::vector<char*> cargv = CStrings(argv);
  std::vector<char*> cenv;
  if (options.env) cenv = CStrings(*options.env);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, argv[0].c_str(), &actions, &attr, cargv.data(),
                        options.env ? cenv.data() : environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return ErrnoStatus(rc, "spawn", absl::StrJoin(argv, " "));
  return pid;
}

absl::StatusOr<int> LocalSpawner::WaitExit(pid_t pid, absl::Duration timeout) {
  int status = 0;
  if (!exits_->WaitFor(pid, timeout, &status)) {
    return absl::DeadlineExceededError(
        absl::StrFormat("pid %d did not exit within %s", pid, absl::FormatDuration(timeout)));
  }
  return status;
}

}  // namespace kuasar::guest
