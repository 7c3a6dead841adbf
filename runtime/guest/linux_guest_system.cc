#include "runtime/guest/linux_guest_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/child_process.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/unique_fd.h"

namespace kuasar::guest {
namespace {

// After the process exits, output its descendants still hold open is read this long.
constexpr absl::Duration kOutputGrace = absl::Milliseconds(500);

struct ExitWatch {
  std::mutex mu;
  bool exited = false;
  int status = 0;
  UniqueFd event;
};

void Collect(int fd, std::string* out, bool* truncated, size_t limit, bool* eof) {
  char buf[16384];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      size_t room = limit > out->size() ? limit - out->size() : 0;
      size_t take = std::min(room, static_cast<size_t>(n));
      out->append(buf, take);
      if (take < static_cast<size_t>(n)) *truncated = true;
      continue;
    }
    if (n == 0) *eof = true;
    return;  // EAGAIN, or EOF
  }
}

}  // namespace

absl::Status LinuxGuestSystem::SetHostname(std::string_view hostname) {
  if (::sethostname(hostname.data(), hostname.size()) != 0) {
    return ErrnoStatus(errno, "sethostname", hostname);
  }
  return absl::OkStatus();
}

absl::Status LinuxGuestSystem::WriteFile(const std::string& path, std::string_view contents) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec) return ErrnoStatus(ec.value(), "mkdir for", path);
  return WriteFileAtomically(path, contents, 0644);
}

absl::Status LinuxGuestSystem::WriteSysctl(const std::string& proc_path, std::string_view value) {
  UniqueFd fd(::open(proc_path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return ErrnoStatus(errno, "open", proc_path);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return ErrnoStatus(errno, "write", proc_path);
  }
  return absl::OkStatus();
}

absl::Status LinuxGuestSystem::SetClock(absl::Time time) {
  timespec ts = absl::ToTimespec(time);
  if (::clock_settime(CLOCK_REALTIME, &ts) != 0) {
    return ErrnoStatus(errno, "clock_settime", absl::FormatTime(time));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<NetLink>> LinuxGuestSystem::ListLinks() {
  std::vector<NetLink> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/sys/class/net", ec)) {
    auto mac = ReadSmallFile(e.path().string() + "/address", 256);
    if (!mac.ok()) continue;
    out.push_back(
        {e.path().filename().string(), absl::AsciiStrToLower(absl::StripAsciiWhitespace(*mac))});
  }
  if (ec) return ErrnoStatus(ec.value(), "list", "/sys/class/net");
  return out;
}

absl::StatusOr<CommandResult> LinuxGuestSystem::Run(const CommandSpec& spec) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return ErrnoStatus(errno, "pipe2");
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return ErrnoStatus(errno, "pipe2");
  UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);
  // The child's ends must block like any ordinary stdout.
  for (int fd : {out_w.get(), err_w.get()}) ::fcntl(fd, F_SETFL, 0);
  auto watch = std::make_shared<ExitWatch>();
  watch->event.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!watch->event) return ErrnoStatus(errno, "eventfd");

  LocalSpawnOptions so;
  so.env = spec.env;
  so.stdio = {-1, out_w.get(), err_w.get()};
  so.new_process_group = true;
  ASSIGN_OR_RETURN(pid_t pid, spawner_->SpawnWith(spec.argv, so));
  out_w.Reset();
  err_w.Reset();
  spawner_->exits()->Watch(pid, [watch](int status, absl::Time) {
    std::lock_guard<std::mutex> l(watch->mu);
    watch->exited = true;
    watch->status = status;
    uint64_t one = 1;
    (void)!::write(watch->event.get(), &one, sizeof(one));
  });

  CommandResult r;
  bool out_eof = false, err_eof = false, exited = false, timed_out = false;
  absl::Time deadline = absl::Now() + spec.timeout;
  absl::Time output_deadline = absl::InfiniteFuture();
  while (!(exited && out_eof && err_eof)) {
    absl::Time now = absl::Now();
    absl::Time until = std::min(deadline, output_deadline);
    if (now >= until) break;
    pollfd p[3] = {{out_eof ? -1 : out_r.get(), POLLIN, 0},
                   {err_eof ? -1 : err_r.get(), POLLIN, 0},
                   {exited ? -1 : watch->event.get(), POLLIN, 0}};
    int ms =
        static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(until - now) + 1, 1, 1000));
    if (::poll(p, 3, ms) < 0 && errno != EINTR) return ErrnoStatus(errno, "poll");
    if (!out_eof) {
      Collect(out_r.get(), &r.stdout_data, &r.stdout_truncated, spec.output_limit, &out_eof);
    }
    if (!err_eof) {
      Collect(err_r.get(), &r.stderr_data, &r.stderr_truncated, spec.output_limit, &err_eof);
    }
    if (!exited) {
      std::lock_guard<std::mutex> l(watch->mu);
      if (watch->exited) {
        exited = true;
        r.exit_code = ExitCodeFromWaitStatus(watch->status);
        output_deadline = absl::Now() + kOutputGrace;
      }
    }
  }
  if (!exited) {
    timed_out = true;
    ::kill(-pid, SIGKILL);  // the process group: what it started goes too
    pollfd p{watch->event.get(), POLLIN, 0};
    (void)::poll(&p, 1, 5000);  // the reaper reports it; bounded all the same
  }
  spawner_->exits()->Forget(pid);
  if (timed_out) {
    return absl::DeadlineExceededError(absl::StrFormat("%s did not finish within %s; killed",
                                                       absl::StrJoin(spec.argv, " "),
                                                       absl::FormatDuration(spec.timeout)));
  }
  return r;
}

}  // namespace kuasar::guest
