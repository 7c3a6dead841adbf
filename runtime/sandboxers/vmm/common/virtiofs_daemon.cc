#include "runtime/sandboxers/vmm/common/virtiofs_daemon.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "runtime/base/child_process.h"
#include "runtime/base/status_macros.h"

namespace kuasar::vmm {

absl::StatusOr<bool> DetectVirtiofsdFlavor(const std::string& daemon_path) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  SpawnOptions options;
  options.stdout_fd = write_end.get();
  options.stderr_fd = write_end.get();
  ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn({daemon_path, "--version"}, options));
  write_end.Reset();
  std::string out;
  char buf[512];
  ssize_t n;
  while (out.size() < 4096 && (n = ::read(read_end.get(), buf, sizeof(buf))) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  ASSIGN_OR_RETURN(int status, child.WaitFor(std::chrono::seconds(5)));
  if (ExitCodeFromWaitStatus(status) != 0 || !absl::StartsWith(out, "virtiofsd")) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s --version: unexpected answer \"%.100s\"", daemon_path, out));
  }
  return !absl::StartsWith(out, "virtiofsd version ");
}

absl::StatusOr<std::vector<std::string>> VirtiofsdArgv(const VirtiofsdOptions& o) {
  std::vector<std::string> argv = {o.daemon_path, "--socket-path=" + o.socket_path};
  if (o.rust) {
    argv.insert(argv.end(), {"--shared-dir", o.shared_dir, "--cache", o.cache});
    if (o.read_only) argv.push_back("--readonly");
  } else {
    if (o.read_only) {
      return absl::InvalidArgumentError(
          "QEMU's C virtiofsd cannot share read-only; use the Rust virtiofsd or 9p");
    }
    std::string cache = o.cache == "never" ? "none" : o.cache;
    argv.insert(argv.end(), {"-o", "source=" + o.shared_dir, "-o", "cache=" + cache});
  }
  argv.insert(argv.end(), o.extra_args.begin(), o.extra_args.end());
  return argv;
}

absl::StatusOr<std::unique_ptr<VmmProcess>> StartVirtiofsd(boost::asio::io_context& io,
                                                           const VirtiofsdOptions& options,
                                                           absl::Time deadline) {
  ASSIGN_OR_RETURN(std::vector<std::string> argv, VirtiofsdArgv(options));
  if (::unlink(options.socket_path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "unlink", options.socket_path);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<VmmProcess> daemon,
                   VmmProcess::Spawn(io, VmmSpawnParams{argv, options.log_path, ""}));
  while (true) {
    struct stat st {};
    if (::stat(options.socket_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) return daemon;
    if (auto exit = daemon->exit()) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "virtiofsd exited with %d before creating %s (see %s)",
          ExitCodeFromWaitStatus(exit->wait_status), options.socket_path, options.log_path));
    }
    if (absl::Now() >= deadline) {
      (void)daemon->Kill();
      return absl::DeadlineExceededError(
          absl::StrFormat("virtiofsd did not create %s in time", options.socket_path));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

}  // namespace kuasar::vmm
