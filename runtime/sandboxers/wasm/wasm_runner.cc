#include "runtime/sandboxers/wasm/wasm_runner.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <optional>

#include "absl/strings/str_format.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/unique_fd.h"
#include "runtime/oci/cgroup.h"
#include "runtime/sandboxers/wasm/runner_handshake.h"
#include "runtime/sandboxers/wasm/runner_privileges.h"
#include "runtime/sandboxers/wasm/wasm_container_spec.h"

namespace kuasar {
namespace {

constexpr size_t kMaxModuleBytes = size_t{512} << 20;

// Opens `path` inside `root` as if `root` were "/" (symlinks and ".." cannot leave it).
absl::StatusOr<UniqueFd> OpenInRoot(int root, const std::string& path, uint64_t flags) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, root, path.c_str(), &how, sizeof(how)));
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  return UniqueFd(fd);
}

absl::StatusOr<std::string> ReadModule(int root, const std::string& path) {
  auto fd = OpenInRoot(root, path, O_RDONLY);
  if (!fd.ok()) {
    return absl::Status(fd.status().code(),
                        absl::StrFormat("wasm module %s not found in the container's rootfs: %s",
                                        path, fd.status().message()));
  }
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return ErrnoStatus(errno, "fstat", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrFormat("wasm module %s is not a file", path));
  }
  if (static_cast<size_t>(st.st_size) > kMaxModuleBytes) {
    return absl::InvalidArgumentError(absl::StrFormat("wasm module %s is over 512 MiB", path));
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = ::read(fd->get(), bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoStatus(n < 0 ? errno : EIO, "read", path);
    got += static_cast<size_t>(n);
  }
  return bytes;
}

absl::Status JoinNamespaces(const WasmContainerSpec& spec) {
  for (const NamespaceJoin& ns : spec.namespaces) {
    int type = ns.type == "network" ? CLONE_NEWNET : ns.type == "ipc" ? CLONE_NEWIPC : CLONE_NEWUTS;
    UniqueFd fd(::open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return ErrnoStatus(errno, "open", ns.path);
    if (::setns(fd.get(), type) != 0) {
      return ErrnoStatus(errno, "setns", absl::StrFormat("%s namespace %s", ns.type, ns.path));
    }
  }
  return absl::OkStatus();
}

absl::Status JoinCgroup(const std::string& path, int64_t memory_limit) {
  if (path.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(CreateCgroup(path));
  if (memory_limit > 0) {
    ASSIGN_OR_RETURN(const CgroupHierarchy* h, CgroupHierarchy::Host());
    ASSIGN_OR_RETURN(std::string dir, h->ControllerPath("memory", path));
    std::string file =
        dir + (h->mode() == CgroupMode::kV2 ? "/memory.max" : "/memory.limit_in_bytes");
    UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
    std::string value = absl::StrFormat("%d", memory_limit);
    if (!fd || ::write(fd.get(), value.data(), value.size()) < 0) {
      return ErrnoStatus(errno, "write", file);
    }
  }
  return AddProcess(path, ::getpid());
}

struct Prepared {
  std::unique_ptr<WasmEngine> engine;
  std::unique_ptr<WasmInstance> instance;
  std::string name;
};

// Everything up to "ready": errors here fail the container's Create.
absl::StatusOr<Prepared> Prepare(const RunnerOptions& o) {
  ASSIGN_OR_RETURN(OciSpec oci, OciSpec::Load(o.bundle + "/config.json"));
  ASSIGN_OR_RETURN(WasmContainerSpec spec, ParseWasmContainerSpec(oci, o.bundle));
  Prepared p;
  ASSIGN_OR_RETURN(p.engine, MakeWasmEngine(o.engine));
  RETURN_IF_ERROR(p.engine->Available());

  WasmProgram prog;
  prog.name = spec.ModulePath();
  prog.args = spec.args;
  prog.env = spec.env;
  prog.limits.memory_bytes = spec.memory_limit > 0 ? spec.memory_limit : o.default_memory_limit;
  prog.limits.cpu_quota_us = spec.cpu_quota_us > 0 ? spec.cpu_quota_us : o.default_cpu_quota_us;
  prog.limits.cpu_period_us = spec.cpu_quota_us > 0 ? spec.cpu_period_us : o.cpu_period_us;
  prog.limits.cpu_time_limit_ms = spec.cpu_time_limit_s * 1000;

  RETURN_IF_ERROR(JoinNamespaces(spec));
  int64_t cgroup_memory =
      prog.limits.memory_bytes > 0 ? prog.limits.memory_bytes + o.cgroup_memory_overhead : 0;
  RETURN_IF_ERROR(Annotate(JoinCgroup(spec.cgroups_path, cgroup_memory),
                           absl::StrFormat("cgroup %s", spec.cgroups_path)));

  UniqueFd root(::open(spec.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return ErrnoStatus(errno, "open rootfs", spec.rootfs);
  ASSIGN_OR_RETURN(prog.module, ReadModule(root.get(), prog.name));
  // The rootfs is "/"; the working directory, resolved inside it, is "." (for relative
  // paths). It is handed over as /proc/self/fd/N so a symlink in the image cannot point
  // the preopen outside the rootfs.
  prog.preopens.push_back({spec.rootfs, "/", spec.rootfs_readonly});
  std::optional<UniqueFd> cwd;
  if (auto fd = OpenInRoot(root.get(), spec.cwd, O_PATH | O_DIRECTORY); fd.ok()) {
    cwd = std::move(*fd);
    prog.preopens.push_back(
        {absl::StrFormat("/proc/self/fd/%d", cwd->get()), ".", spec.rootfs_readonly});
  }
  for (const WasmPreopen& b : spec.binds) {
    struct stat st {};
    // Files (hosts, resolv.conf, ...) cannot be WASI preopens, which are directories.
    if (::stat(b.host_path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    prog.preopens.push_back(b);
  }
  ASSIGN_OR_RETURN(p.instance, p.engine->Prepare(std::move(prog)));
  p.name = spec.ModulePath();
  RETURN_IF_ERROR(ApplyRlimits(spec));
  RETURN_IF_ERROR(DropPrivileges(spec));
  return p;
}

}  // namespace

int RunWasmContainer(const RunnerOptions& o) {
  std::optional<RunnerHandshake> hs;
  if (!o.state_dir.empty()) {
    auto opened = RunnerHandshake::Open(o.state_dir);
    if (!opened.ok()) {
      std::fprintf(stderr, "kuasar-wasm-run: %s\n", std::string(opened.status().message()).c_str());
      return 1;
    }
    hs.emplace(std::move(*opened));
  }
  absl::StatusOr<Prepared> p = Prepare(o);
  if (!p.ok()) {
    std::fprintf(stderr, "kuasar-wasm-run: %s\n", std::string(p.status().message()).c_str());
    if (hs) hs->ReportError(p.status());
    return 1;
  }
  if (hs) {
    (void)hs->ReportReady();
    if (absl::Status st = hs->WaitForStart(); !st.ok()) return 1;
  }
  absl::StatusOr<WasmOutcome> out = p->instance->Run();
  if (!out.ok()) {
    std::fprintf(stderr, "kuasar-wasm-run: %s: %s\n", p->name.c_str(),
                 std::string(out.status().message()).c_str());
    return 1;
  }
  if (out->kind != WasmOutcome::Kind::kExited) {
    std::fprintf(stderr, "kuasar-wasm-run: %s: %s\n", p->name.c_str(),
                 DescribeOutcome(*out).c_str());
  }
  return ExitStatusFor(*out);
}

}  // namespace kuasar
