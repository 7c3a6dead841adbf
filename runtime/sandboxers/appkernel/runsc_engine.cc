#include "runtime/sandboxers/appkernel/runsc_engine.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/child_process.h"
#include "runtime/base/id_check.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/appkernel/pod_sandbox_spec.h"

namespace kuasar {

namespace {

// runsc's sandbox pivots into an empty root and re-executes /proc/self/exe there (gVisor
// runsc/cmd/sentry/sentrycmd/chroot.go): a dynamically linked runsc cannot, its ELF
// interpreter is not in that root ("fork/exec /proc/self/exe: no such file or directory").
absl::Status CheckStatic(const std::string& binary) {
  UniqueFd fd(::open(binary.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open", binary);
  Elf64_Ehdr eh;
  if (::pread(fd.get(), &eh, sizeof(eh), 0) != static_cast<ssize_t>(sizeof(eh)) ||
      std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64) {
    return absl::OkStatus();  // not a 64-bit ELF: let runsc itself say what is wrong
  }
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    off_t at = static_cast<off_t>(eh.e_phoff) + static_cast<off_t>(i) * eh.e_phentsize;
    if (::pread(fd.get(), &ph, sizeof(ph), at) != static_cast<ssize_t>(sizeof(ph))) break;
    if (ph.p_type == PT_INTERP) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s is dynamically linked: its sandbox re-executes itself inside an empty chroot "
          "without the ELF interpreter and fails with \"fork/exec /proc/self/exe: no such file "
          "or directory\"; build runsc with CGO_ENABLED=0 (ci/install-go-tools does)",
          binary));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<RunscEngine>> RunscEngine::Make(const RunscEngineOptions& o) {
  ASSIGN_OR_RETURN(std::string binary, ResolveOciRuntime(o.binary));
  RETURN_IF_ERROR(CheckStatic(binary));
  if (::access(o.waiter.c_str(), X_OK) != 0) return ErrnoStatus(errno, "access", o.waiter);
  OciCliEngineOptions cli;
  cli.binary = binary;
  cli.root = o.root;
  cli.command_timeout = o.command_timeout;
  cli.global_flags = o.global_flags;
  ASSIGN_OR_RETURN(std::unique_ptr<ContainerEngine> engine, MakeOciCliEngine(cli));
  std::error_code ec;
  std::filesystem::create_directories(o.root + "/kuasar-wait", ec);
  if (ec) {
    return absl::InternalError(
        absl::StrFormat("mkdir %s/kuasar-wait: %s", o.root, ec.message()));
  }
  return std::unique_ptr<RunscEngine>(new RunscEngine(o, binary, std::move(engine)));
}

RunscEngine::RunscEngine(RunscEngineOptions options, std::string binary,
                         std::unique_ptr<ContainerEngine> cli)
    : options_(std::move(options)), binary_(std::move(binary)), cli_(std::move(cli)) {}

std::string RunscEngine::FifoPath(std::string_view id) const {
  return absl::StrFormat("%s/kuasar-wait/%s.start", options_.root, std::string(id));
}

absl::StatusOr<pid_t> RunscEngine::Create(ProcessSpawner& spawner, const EngineCreateOptions& o) {
  RETURN_IF_ERROR(ValidateId(o.id, "container id"));
  ASSIGN_OR_RETURN(std::string text, ReadSmallFile(o.bundle + "/config.json", 16 << 20));
  nlohmann::json spec = nlohmann::json::parse(text, nullptr, false);
  ASSIGN_OR_RETURN(std::string sandbox, SandboxToJoin(spec));
  // A sandbox of its own: runsc's pid is the Sentry, which exits with the container.
  if (sandbox.empty()) return cli_->Create(spawner, o);
  if (!o.console_socket.empty()) {
    return absl::UnimplementedError(
        "terminal containers joining a gVisor pod sandbox are not supported yet");
  }
  Joined joined;
  for (int i = 0; i < 3; ++i) {
    if (o.stdio[i] < 0) continue;
    joined.stdio[i] = UniqueFd(::fcntl(o.stdio[i], F_DUPFD_CLOEXEC, 3));
    if (!joined.stdio[i]) return ErrnoStatus(errno, "dup", "container stdio");
  }
  RETURN_IF_ERROR(cli_->Create(spawner, o).status());
  std::string fifo = FifoPath(o.id);
  ::unlink(fifo.c_str());
  absl::Status st;
  if (::mkfifo(fifo.c_str(), 0600) != 0) st = ErrnoStatus(errno, "mkfifo", fifo);
  if (st.ok()) {
    joined.start_fifo = UniqueFd(::open(fifo.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!joined.start_fifo) st = ErrnoStatus(errno, "open", fifo);
  }
  absl::StatusOr<pid_t> waiter =
      st.ok() ? spawner.Spawn({options_.waiter, binary_, options_.root, fifo, o.id}, {-1, -1, -1})
              : absl::StatusOr<pid_t>(st);
  if (!waiter.ok()) {
    ::unlink(fifo.c_str());
    (void)cli_->Delete(o.id, /*force=*/true);
    return waiter.status();
  }
  std::lock_guard<std::mutex> l(mu_);
  joined_[o.id] = std::move(joined);
  return *waiter;
}

absl::Status RunscEngine::StartWithStdio(std::string_view id,
                                         const std::array<UniqueFd, 3>& stdio) {
  std::vector<std::string> argv = {binary_, "--root", options_.root};
  argv.insert(argv.end(), options_.global_flags.begin(), options_.global_flags.end());
  argv.insert(argv.end(), {"start", std::string(id)});
  // runsc logs its own errors on stderr; the container's stderr is given separately.
  std::string log = absl::StrFormat("%s/kuasar-wait/%s.log", options_.root, std::string(id));
  SpawnOptions so;
  so.stdin_fd = stdio[0].get();
  so.stdout_fd = stdio[1].get();
  so.stderr_fd = stdio[2].get();
  argv.insert(argv.begin() + 3, {"--log", log, "--log-format", "json"});
  ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(argv, so));
  ASSIGN_OR_RETURN(int status, child.WaitFor(absl::ToChronoMilliseconds(options_.command_timeout)));
  if (status != 0) {
    auto text = ReadSmallFile(log, 1 << 20);
    ::unlink(log.c_str());
    return absl::InternalError(absl::StrFormat(
        "runsc start %s: exit %d: %s", id, ExitCodeFromWaitStatus(status),
        text.ok() ? std::string(absl::StripAsciiWhitespace(*text)).substr(0, 2000) : ""));
  }
  ::unlink(log.c_str());
  return absl::OkStatus();
}

void RunscEngine::Signal(std::string_view id, UniqueFd fifo, char what) {
  if (!fifo) fifo = UniqueFd(::open(FifoPath(id).c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  if (fifo) (void)!::write(fifo.get(), &what, 1);
}

absl::Status RunscEngine::Start(std::string_view id) {
  std::optional<Joined> joined;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = joined_.find(id);
    if (it != joined_.end()) {
      joined = std::move(it->second);
      joined_.erase(it);
    }
  }
  bool is_joined = joined.has_value() || ::access(FifoPath(id).c_str(), F_OK) == 0;
  if (!is_joined) return cli_->Start(id);
  // After a sandboxer restart the dups are gone: the container starts without stdio.
  std::array<UniqueFd, 3> none;
  absl::Status st = StartWithStdio(id, joined ? joined->stdio : none);
  Signal(id, joined ? std::move(joined->start_fifo) : UniqueFd(), st.ok() ? 'S' : 'X');
  return st;
}

absl::Status RunscEngine::Delete(std::string_view id, bool force) {
  UniqueFd fifo;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = joined_.find(id);
    if (it != joined_.end()) {
      fifo = std::move(it->second.start_fifo);
      joined_.erase(it);
    }
  }
  // A waiter still blocked (never started) is let go; a started one has read its byte.
  if (::access(FifoPath(id).c_str(), F_OK) == 0) Signal(id, std::move(fifo), 'X');
  ::unlink(FifoPath(id).c_str());
  return cli_->Delete(id, force);
}

absl::StatusOr<pid_t> RunscEngine::CreatePodSandbox(ProcessSpawner& spawner,
                                                    const std::string& sandbox_id,
                                                    const std::string& bundle) {
  EngineCreateOptions o;
  o.id = sandbox_id;
  o.bundle = bundle;
  ASSIGN_OR_RETURN(pid_t pid, cli_->Create(spawner, o));
  if (absl::Status st = cli_->Start(sandbox_id); !st.ok()) {
    (void)cli_->Delete(sandbox_id, /*force=*/true);
    return st;
  }
  return pid;
}

absl::Status RunscEngine::DeletePodSandbox(const std::string& sandbox_id) {
  return cli_->Delete(sandbox_id, /*force=*/true);
}

}  // namespace kuasar
