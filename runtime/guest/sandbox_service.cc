#include "runtime/guest/sandbox_service.h"

#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/id_check.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/guest/guest_network.h"
#include "runtime/guest/guest_setup.h"
#include "runtime/version.h"

namespace kuasar::guest {
namespace {

// Jan 1 2020: a clock set before this is a bug on the caller's side, not a correction.
constexpr int64_t kEarliestClockNanos = 1577836800LL * 1000000000LL;
constexpr int kMaxExecArgs = 4096;
constexpr size_t kMaxExecArgBytes = 1 << 20;

absl::Status NoNul(std::string_view what, std::string_view s) {
  if (s.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrFormat("%s contains a NUL byte", what));
  }
  return absl::OkStatus();
}

// The `ip` command: iproute2's or busybox's applet, whichever this system has.
std::vector<std::string> IpCommand() {
  for (const char* p : {"/sbin/ip", "/usr/sbin/ip", "/bin/ip", "/usr/bin/ip"}) {
    if (::access(p, X_OK) == 0) return {p};
  }
  return {"busybox", "ip"};
}

}  // namespace

SandboxService::SandboxService(GuestSystem* system, SandboxServiceOptions options)
    : system_(system), options_(std::move(options)) {}

void SandboxService::MarkReady() {
  auto text = ReadSmallFile("/proc/uptime", 256);
  double seconds = 0;
  if (text.ok() && std::sscanf(text->c_str(), "%lf", &seconds) == 1) {
    ready_after_boot_ns_ = static_cast<int64_t>(seconds * 1e9);
  }
}

absl::StatusOr<agentpb::CheckResponse> SandboxService::Check(const agentpb::CheckRequest&) {
  agentpb::CheckResponse r;
  r.set_agent_version(kVersion);
  if (options_.uptime_from_boot) {
    timespec ts{};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    r.set_uptime_ns(static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec);
  } else {
    r.set_uptime_ns(absl::ToInt64Nanoseconds(absl::Now() - started_));
  }
  r.set_ready_after_boot_ns(ready_after_boot_ns_.load());
  utsname u{};
  if (::uname(&u) == 0) r.set_kernel_release(u.release);
  return r;
}

absl::Status SandboxService::ApplySysctls(const agentpb::SetupSandboxRequest& req) {
  if (req.sysctls().empty()) return absl::OkStatus();
  // Sorted, so a failure names the same key every time.
  std::map<std::string, std::string> sorted(req.sysctls().begin(), req.sysctls().end());
  std::vector<std::pair<std::string, std::string>> writes;
  for (const auto& [key, value] : sorted) {
    ASSIGN_OR_RETURN(std::string path, SysctlPath(key));
    RETURN_IF_ERROR(ValidateSysctlValue(value));
    writes.push_back({path, value});
  }
  if (!options_.caps.configure_network) {
    return absl::FailedPreconditionError(
        "sysctls need the agent's own namespaces (--init vm or namespace)");
  }
  for (const auto& [path, value] : writes) {
    RETURN_IF_ERROR(Annotate(system_->WriteSysctl(path, value), "sysctl"));
  }
  return absl::OkStatus();
}

absl::Status SandboxService::ApplyNetwork(const agentpb::SetupSandboxRequest& req) {
  if (req.interfaces().empty() && req.routes().empty()) return absl::OkStatus();
  if (!options_.caps.configure_network) {
    return absl::FailedPreconditionError(
        "network setup needs the agent's own namespaces (--init vm or namespace)");
  }
  ASSIGN_OR_RETURN(std::vector<NetLink> links, system_->ListLinks());
  ASSIGN_OR_RETURN(std::vector<IpArgs> plan, PlanNetwork(req, links));
  std::vector<std::string> ip = IpCommand();
  for (const IpArgs& args : plan) {
    CommandSpec spec;
    spec.argv = ip;
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.output_limit = 64 << 10;
    ASSIGN_OR_RETURN(CommandResult r, system_->Run(spec));
    if (r.exit_code == 0) continue;
    if (IsIdempotentAdd(args) && absl::StrContains(r.stderr_data, "File exists")) continue;
    return absl::InternalError(absl::StrFormat("ip %s: exit %d: %s", absl::StrJoin(args, " "),
                                               r.exit_code, r.stderr_data));
  }
  return absl::OkStatus();
}

absl::StatusOr<google::protobuf::Empty> SandboxService::SetupSandbox(
    const agentpb::SetupSandboxRequest& req) {
  std::lock_guard<std::mutex> l(mu_);
  if (!req.sandbox_id().empty()) RETURN_IF_ERROR(ValidateId(req.sandbox_id(), "sandbox id"));
  if (!req.hostname().empty()) RETURN_IF_ERROR(ValidateHostname(req.hostname()));
  ASSIGN_OR_RETURN(std::string hosts, RenderHosts(req));
  ASSIGN_OR_RETURN(std::string resolv, RenderResolvConf(req));
  if (!req.shared_dir().empty() &&
      (req.shared_dir()[0] != '/' || !NoNul("shared_dir", req.shared_dir()).ok())) {
    return absl::InvalidArgumentError("shared_dir must be an absolute path");
  }

  if (!req.hostname().empty()) {
    if (options_.caps.set_hostname) {
      RETURN_IF_ERROR(system_->SetHostname(req.hostname()));
    } else {
      spdlog::info("sandbox={} op=setup hostname={} note=\"not set: shared UTS namespace\"",
                   req.sandbox_id(), req.hostname());
    }
    RETURN_IF_ERROR(system_->WriteFile(options_.etc_dir + "/hostname", req.hostname() + "\n"));
  }
  RETURN_IF_ERROR(system_->WriteFile(options_.etc_dir + "/hosts", hosts));
  if (!resolv.empty()) {
    RETURN_IF_ERROR(system_->WriteFile(options_.etc_dir + "/resolv.conf", resolv));
  }
  RETURN_IF_ERROR(ApplySysctls(req));
  RETURN_IF_ERROR(ApplyNetwork(req));
  if (!req.shared_dir().empty() && ::access(req.shared_dir().c_str(), F_OK) != 0) {
    spdlog::warn("sandbox={} op=setup shared_dir={} note=\"not mounted in the guest\"",
                 req.sandbox_id(), req.shared_dir());
  }
  spdlog::info("sandbox={} op=setup interfaces={} routes={} sysctls={}", req.sandbox_id(),
               req.interfaces_size(), req.routes_size(), req.sysctls_size());
  return google::protobuf::Empty();
}

absl::StatusOr<google::protobuf::Empty> SandboxService::SyncClock(
    const agentpb::SyncClockRequest& req) {
  if (req.unix_nanos() < kEarliestClockNanos) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "refusing to set the clock to %d ns since the epoch (before 2020)", req.unix_nanos()));
  }
  // Sharing the host's kernel there is no guest clock to drift: nothing to do.
  if (!options_.caps.set_clock) return google::protobuf::Empty();
  RETURN_IF_ERROR(system_->SetClock(absl::FromUnixNanos(req.unix_nanos())));
  return google::protobuf::Empty();
}

absl::StatusOr<agentpb::ExecVMProcessResponse> SandboxService::ExecVMProcess(
    const agentpb::ExecVMProcessRequest& req) {
  if (req.args().empty() || req.args(0).empty()) {
    return absl::InvalidArgumentError("ExecVMProcess: args must name a program");
  }
  if (req.args_size() > kMaxExecArgs || req.env_size() > kMaxExecArgs) {
    return absl::InvalidArgumentError("ExecVMProcess: too many args or env entries");
  }
  size_t bytes = 0;
  for (const auto& a : req.args()) {
    RETURN_IF_ERROR(NoNul("an argument", a));
    bytes += a.size();
  }
  for (const auto& e : req.env()) {
    RETURN_IF_ERROR(NoNul("an env entry", e));
    if (e.find('=') == std::string::npos || e[0] == '=') {
      return absl::InvalidArgumentError(absl::StrFormat("env entry \"%s\" is not NAME=VALUE", e));
    }
    bytes += e.size();
  }
  if (bytes > kMaxExecArgBytes) return absl::InvalidArgumentError("ExecVMProcess: args too long");
  if (req.timeout_ms() < 0 || req.timeout_ms() > kMaxExecTimeoutMs) {
    return absl::InvalidArgumentError(absl::StrFormat("timeout_ms %d: must be 0 (default %d) to %d",
                                                      req.timeout_ms(), kDefaultExecTimeoutMs,
                                                      kMaxExecTimeoutMs));
  }
  CommandSpec spec;
  spec.argv.assign(req.args().begin(), req.args().end());
  if (!req.env().empty()) spec.env = std::vector<std::string>(req.env().begin(), req.env().end());
  spec.timeout =
      absl::Milliseconds(req.timeout_ms() == 0 ? kDefaultExecTimeoutMs : req.timeout_ms());
  spec.output_limit = kExecOutputLimit;
  ASSIGN_OR_RETURN(CommandResult r, system_->Run(spec));
  agentpb::ExecVMProcessResponse resp;
  resp.set_exit_code(r.exit_code);
  resp.set_stdout(std::move(r.stdout_data));
  resp.set_stderr(std::move(r.stderr_data));
  spdlog::info("op=exec-vm-process argv0={} exit={}", req.args(0), resp.exit_code());
  return resp;
}

absl::StatusOr<google::protobuf::Empty> SandboxService::Shutdown(const google::protobuf::Empty&) {
  spdlog::info("op=shutdown source=api");
  if (options_.stop_containers) options_.stop_containers();
  if (options_.request_exit) options_.request_exit();
  return google::protobuf::Empty();
}

}  // namespace kuasar::guest
