#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <optional>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/child_process.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/unique_fd.h"
#include "runtime/oci/container_engine.h"

namespace kuasar {
namespace {

// The last error line the runtime logged in JSON ({"msg": ...}) or plain text.
std::string RuntimeError(const std::string& log_path, const std::string& fallback) {
  auto text = ReadSmallFile(log_path, 1 << 20);
  std::string last;
  if (text.ok()) {
    size_t pos = 0;
    while (pos < text->size()) {
      size_t nl = text->find('\n', pos);
      if (nl == std::string::npos) nl = text->size();
      std::string line = text->substr(pos, nl - pos);
      pos = nl + 1;
      if (line.empty()) continue;
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("msg")) {
        std::string level = j.value("level", "error");
        if (level == "error" || level == "fatal" || last.empty()) last = j["msg"].get<std::string>();
      } else {
        last = line;
      }
    }
  }
  return last.empty() ? fallback : last;
}

class OciCliEngine final : public ContainerEngine {
 public:
  OciCliEngine(OciCliEngineOptions options, std::string binary)
      : options_(std::move(options)), binary_(std::move(binary)) {
    name_ = std::filesystem::path(binary_).filename().string();
  }

  std::string_view Name() const override { return name_; }

  bool AdaptSpec(OciSpec& spec) const override {
    // crun 1.8 (Debian 12) rejects runtime-spec versions from 1.2.0 on, which containerd
    // 2.x writes; the fields the sandboxer's containers use are all 1.1.0-era.
    if (name_ != "crun") return false;
    int major = 0, minor = 0;
    if (std::sscanf(spec.oci_version().c_str(), "%d.%d", &major, &minor) != 2) return false;
    if (major > 1 || (major == 1 && minor > 1)) {
      spec.set_oci_version("1.1.0");
      return true;
    }
    return false;
  }

  absl::StatusOr<pid_t> Create(ProcessSpawner& spawner, const EngineCreateOptions& o) override {
    std::string pid_file = o.bundle + "/init.pid";
    std::string log = o.bundle + "/runtime.log";
    ::unlink(pid_file.c_str());
    std::vector<std::string> argv = Base(log);
    argv.insert(argv.end(), {"create", "--bundle", o.bundle, "--pid-file", pid_file});
    if (options_.no_pivot) argv.push_back("--no-pivot");
    if (!o.console_socket.empty()) argv.insert(argv.end(), {"--console-socket", o.console_socket});
    argv.push_back(o.id);
    RETURN_IF_ERROR(RunSpawned(spawner, argv, o.stdio, log, "create"));
    return ReadPid(pid_file);
  }

  absl::Status Start(std::string_view id) override { return Run({"start", std::string(id)}); }

  absl::StatusOr<pid_t> Exec(ProcessSpawner& spawner, const EngineExecOptions& o) override {
    std::string process = absl::StrCat(o.bundle, "/exec-", o.exec_id, ".json");
    std::string pid_file = absl::StrCat(o.bundle, "/exec-", o.exec_id, ".pid");
    std::string log = absl::StrCat(o.bundle, "/exec-", o.exec_id, ".log");
    RETURN_IF_ERROR(WriteFileAtomically(process, o.process_json));
    ::unlink(pid_file.c_str());
    std::vector<std::string> argv = Base(log);
    argv.insert(argv.end(), {"exec", "--detach", "--process", process, "--pid-file", pid_file});
    if (!o.console_socket.empty()) argv.insert(argv.end(), {"--console-socket", o.console_socket});
    argv.push_back(o.id);
    absl::Status st = RunSpawned(spawner, argv, o.stdio, log, "exec");
    ::unlink(process.c_str());
    RETURN_IF_ERROR(st);
    auto pid = ReadPid(pid_file);
    ::unlink(pid_file.c_str());
    ::unlink(log.c_str());
    return pid;
  }

  absl::Status Kill(std::string_view id, int signal, bool all) override {
    std::vector<std::string> args = {"kill"};
    if (all) args.push_back("--all");
    args.insert(args.end(), {std::string(id), std::to_string(signal)});
    return Run(args);
  }

  absl::Status Delete(std::string_view id, bool force) override {
    std::vector<std::string> args = {"delete"};
    if (force) args.push_back("--force");
    args.push_back(std::string(id));
    absl::Status st = Run(args);
    // Deleting what the runtime does not know is success: teardown is idempotent.
    if (!st.ok() && (st.message().find("does not exist") != std::string::npos ||
                     st.message().find("not found") != std::string::npos)) {
      return absl::OkStatus();
    }
    return st;
  }

  absl::Status Pause(std::string_view id) override { return Run({"pause", std::string(id)}); }
  absl::Status Resume(std::string_view id) override { return Run({"resume", std::string(id)}); }

  absl::Status Update(std::string_view id, std::string_view resources_json,
                      const std::string& scratch_dir) override {
    std::string path = absl::StrFormat("%s/update-%s.json", scratch_dir, id);
    RETURN_IF_ERROR(WriteFileAtomically(path, resources_json));
    absl::Status st = Run({"update", "--resources", path, std::string(id)});
    ::unlink(path.c_str());
    return st;
  }

  absl::StatusOr<std::vector<pid_t>> Ps(std::string_view id) override {
    std::string out;
    RETURN_IF_ERROR(Run({"ps", "--format", "json", std::string(id)}, &out));
    nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
    std::vector<pid_t> pids;
    if (j.is_null()) return pids;
    if (!j.is_array()) {
      return absl::InternalError(absl::StrFormat("%s ps: unexpected output \"%s\"", name_, out));
    }
    for (const auto& p : j) {
      if (p.is_number_integer()) pids.push_back(p.get<pid_t>());
    }
    return pids;
  }

 private:
  std::vector<std::string> Base(const std::string& log) const {
    std::vector<std::string> argv = {binary_, "--root", options_.root, "--log", log,
                                     "--log-format", "json"};
    if (options_.systemd_cgroup) argv.push_back("--systemd-cgroup");
    argv.insert(argv.end(), options_.global_flags.begin(), options_.global_flags.end());
    return argv;
  }

  // A short command run as our own child; its stderr becomes the error message.
  absl::Status Run(const std::vector<std::string>& args, std::string* out = nullptr) {
    std::vector<std::string> argv = {binary_, "--root", options_.root};
    if (options_.systemd_cgroup) argv.push_back("--systemd-cgroup");
    argv.insert(argv.end(), options_.global_flags.begin(), options_.global_flags.end());
    argv.insert(argv.end(), args.begin(), args.end());
    char tmpl[] = "/tmp/kuasar-oci.XXXXXX";
    UniqueFd outfd(::mkostemp(tmpl, O_CLOEXEC));
    if (!outfd) return ErrnoStatus(errno, "mkostemp");
    ::unlink(tmpl);
    int errpipe[2];
    if (::pipe2(errpipe, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
    UniqueFd err_r(errpipe[0]), err_w(errpipe[1]);
    std::optional<ChildProcess> child;
    pid_t spawned = -1;
    if (options_.command_spawner != nullptr) {
      ASSIGN_OR_RETURN(spawned,
                       options_.command_spawner->Spawn(argv, {-1, outfd.get(), err_w.get()}));
    } else {
      SpawnOptions so;
      so.stdout_fd = outfd.get();
      so.stderr_fd = err_w.get();
      ASSIGN_OR_RETURN(child, ChildProcess::Spawn(argv, so));
    }
    err_w.Reset();
    std::string err;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(err_r.get(), buf, sizeof(buf))) > 0 && err.size() < 65536) {
      err.append(buf, static_cast<size_t>(n));
    }
    ASSIGN_OR_RETURN(int status,
                     child ? child->WaitFor(absl::ToChronoMilliseconds(options_.command_timeout))
                           : options_.command_spawner->WaitExit(spawned, options_.command_timeout));
    if (out != nullptr) {
      ::lseek(outfd.get(), 0, SEEK_SET);
      out->clear();
      while ((n = ::read(outfd.get(), buf, sizeof(buf))) > 0) out->append(buf, static_cast<size_t>(n));
    }
    if (status != 0) {
      std::string msg(absl::StripAsciiWhitespace(err));
      return absl::InternalError(absl::StrFormat("%s %s: %s", name_, args[0],
                                                 msg.empty() ? "failed" : msg));
    }
    return absl::OkStatus();
  }

  absl::Status RunSpawned(ProcessSpawner& spawner, const std::vector<std::string>& argv,
                          std::array<int, 3> stdio, const std::string& log, const char* what) {
    ::unlink(log.c_str());
    ASSIGN_OR_RETURN(pid_t pid, spawner.Spawn(argv, stdio));
    ASSIGN_OR_RETURN(int status, spawner.WaitExit(pid, options_.command_timeout));
    if (status != 0) {
      return absl::InternalError(absl::StrFormat(
          "%s %s: %s", name_, what,
          RuntimeError(log, absl::StrFormat("exit status %d", ExitCodeFromWaitStatus(status)))));
    }
    return absl::OkStatus();
  }

  static absl::StatusOr<pid_t> ReadPid(const std::string& pid_file) {
    ASSIGN_OR_RETURN(std::string text, ReadSmallFile(pid_file, 64));
    int pid = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &pid) || pid <= 0) {
      return absl::DataLossError(absl::StrFormat("bad pid file %s: \"%s\"", pid_file, text));
    }
    return static_cast<pid_t>(pid);
  }

  OciCliEngineOptions options_;
  std::string binary_;
  std::string name_;
};

}  // namespace

// Finds `name` on PATH unless it already is a path.
absl::StatusOr<std::string> ResolveOciRuntime(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) != 0) return ErrnoStatus(errno, "access", name);
    return name;
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return absl::NotFoundError(absl::StrCat("OCI runtime \"", name, "\" not found on PATH"));
}

std::string CrunHostProblem() {
  auto v2 = ReadSmallFile("/sys/fs/cgroup/cgroup.controllers", 4096);
  if (v2.ok()) return "";  // pure cgroup v2
  // Hybrid: v1 controllers plus a cgroup2 mount; crun gives up if that mount has any.
  auto mountinfo = ReadSmallFile("/proc/self/mountinfo", 1 << 20);
  if (!mountinfo.ok()) return "";
  size_t pos = 0;
  while (pos < mountinfo->size()) {
    size_t nl = mountinfo->find('\n', pos);
    if (nl == std::string::npos) nl = mountinfo->size();
    std::string line = mountinfo->substr(pos, nl - pos);
    pos = nl + 1;
    size_t dash = line.find(" - cgroup2 ");
    if (dash == std::string::npos) continue;
    // Field 5 is the mount point.
    std::vector<std::string> f;
    size_t s = 0;
    for (int i = 0; i < 5 && s < line.size(); ++i) {
      size_t e = line.find(' ', s);
      f.push_back(line.substr(s, e - s));
      s = e == std::string::npos ? line.size() : e + 1;
    }
    if (f.size() < 5) continue;
    auto controllers = ReadSmallFile(f[4] + "/cgroup.controllers", 4096);
    if (controllers.ok() && !absl::StripAsciiWhitespace(*controllers).empty()) {
      return absl::StrFormat("cgroup hybrid mode with controllers (%s) on %s",
                             std::string(absl::StripAsciiWhitespace(*controllers)), f[4]);
    }
  }
  return "";
}

absl::StatusOr<std::unique_ptr<ContainerEngine>> MakeOciCliEngine(
    const OciCliEngineOptions& options) {
  std::string wanted = options.binary;
  if (wanted == "auto") {
    std::string problem = CrunHostProblem();
    wanted = (problem.empty() && ResolveOciRuntime("crun").ok()) ? "crun" : "runc";
  }
  ASSIGN_OR_RETURN(std::string binary, ResolveOciRuntime(wanted));
  if (options.root.empty() || options.root[0] != '/') {
    return absl::InvalidArgumentError("the OCI runtime root must be an absolute path");
  }
  std::error_code ec;
  std::filesystem::create_directories(options.root, ec);
  if (ec) return absl::InternalError(absl::StrFormat("mkdir %s: %s", options.root, ec.message()));
  return std::unique_ptr<ContainerEngine>(new OciCliEngine(options, std::move(binary)));
}

}  // namespace kuasar
