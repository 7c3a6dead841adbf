#include "sim/common/guest.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/base/logging.h"

namespace kuasar::sim {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// State dirs in /tmp of fake VMMs that died by SIGKILL (nothing else leaves them): a
// directory whose VMM pid no longer exists is removed.
void SweepStaleTmpStateDirs() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/tmp", ec)) {
    std::string name = e.path().filename().string();
    int pid = 0;
    char tail[8] = {};
    if (std::sscanf(name.c_str(), "kuasar-fakevm-%d-%7s", &pid, tail) != 2 || pid <= 0 ||
        std::string(tail) != "agent") {
      continue;
    }
    if (::kill(pid, 0) != 0 && errno == ESRCH) std::filesystem::remove_all(e.path(), ec);
  }
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

Clock::duration FromMs(double ms) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(ms));
}

}  // namespace

Guest::Guest(asio::io_context& io, const SimConfig& config, FaultPlan& faults, BootSampler& sampler)
    : io_(io),
      config_(config),
      faults_(faults),
      sampler_(sampler),
      boot_timer_(io),
      kill_timer_(io),
      drop_timer_(io) {}

Guest::~Guest() {
  StopAgent();
  std::error_code ec;
  if (!state_dir_.empty()) std::filesystem::remove_all(state_dir_, ec);
  if (!run_dir_.empty()) std::filesystem::remove_all(run_dir_, ec);
}

void Guest::SetRunDir(const std::string& dir_hint) {
  std::string base = !config_.run_dir.empty() ? config_.run_dir : dir_hint;
  if (base.empty()) base = "/tmp";
  run_dir_ = absl::StrFormat("%s/fakevm-%d", base, ::getpid());
}

void Guest::UseVsock(const std::string& dir_hint) {
  use_vsock_ = true;
  SetRunDir(dir_hint);
}

void Guest::UseSerial(SerialChannel* serial) {
  serial_ = serial;
  if (serial != nullptr && run_dir_.empty()) {
    SetRunDir(std::filesystem::path(serial->path()).parent_path().string());
  }
}

std::string Guest::VsockPortPath(uint32_t port) const {
  return absl::StrFormat("%s/vsock-%d.sock", run_dir_, port);
}

// vmm-task's scratch (runtime root, console sockets, pod files) must be per VM: its
// default, /run/kuasar-agent, is the host's, shared by every fake VM. In the run dir when
// the path fits the agent's 80-byte limit, else a short one under /tmp.
std::string Guest::AgentStateDir() {
  if (state_dir_.empty()) {
    std::string in_run = run_dir_.empty() ? "" : run_dir_ + "/agent";
    if (!in_run.empty() && in_run.size() <= 80) {
      state_dir_ = in_run;
    } else {
      SweepStaleTmpStateDirs();
      state_dir_ = absl::StrFormat("/tmp/kuasar-fakevm-%d-agent", ::getpid());
    }
  }
  return state_dir_;
}

std::optional<pid_t> Guest::agent_pid() const {
  if (!agent_running()) return std::nullopt;
  return agent_->pid();
}

absl::Status Guest::PowerOn(const GuestSpec& spec) {
  StopAgent();
  ++generation_;
  spec_ = spec;
  double mib = config_.model.memory.TouchMib(spec.memory_mib, spec.vcpus);
  if (absl::Status st = memory_.MapAndTouch(static_cast<size_t>(mib * 1024 * 1024)); !st.ok()) {
    return st;
  }
  powered_ = true;
  booting_ = true;
  boot_started_ = Clock::now();
  double boot_ms = sampler_.BootMs();
  spdlog::info("op=power-on boot_ms={:.1f} memory_mib={:.1f} vcpus={}", boot_ms, mib, spec.vcpus);
  if (paused_) {
    boot_remaining_ = FromMs(boot_ms);
  } else {
    ArmBoot(FromMs(boot_ms));
  }
  return absl::OkStatus();
}

void Guest::ArmBoot(Clock::duration after) {
  boot_deadline_ = Clock::now() + after;
  boot_timer_.expires_after(after);
  boot_timer_.async_wait([this, gen = generation_](boost::system::error_code ec) {
    if (ec || gen != generation_ || paused_) return;
    booting_ = false;
    if (faults_.hang_boot) {
      spdlog::warn("op=boot fault=hang_boot: the guest never reaches init");
      return;
    }
    StartAgent();
  });
}

void Guest::StartAgent() {
  AgentLaunch launch;
  launch.path = config_.agent.path;
  launch.isolation = config_.agent.isolation;
  launch.args = {"--init", "namespace"};
  std::string channel;
  UniqueFd guest_end;
  std::error_code ec;
  if (!run_dir_.empty()) std::filesystem::create_directories(run_dir_, ec);
  if (use_vsock_) {
    std::string port_path = VsockPortPath(static_cast<uint32_t>(config_.agent.vsock_port));
    std::filesystem::remove(port_path, ec);
    launch.args.insert(launch.args.end(), {"--listen", "unix:" + port_path});
    channel = absl::StrFormat("vsock:%d", config_.agent.vsock_port);
  } else if (serial_ != nullptr) {
    auto fd = serial_->AttachGuest();
    if (!fd.ok()) {
      spdlog::error("op=agent-start error=\"{}\"", fd.status().message());
      AgentExited(W_EXITCODE(127, 0));
      return;
    }
    guest_end = std::move(*fd);
    launch.serve_fd = guest_end.get();
    launch.args.insert(launch.args.end(), {"--serve-fd", "3"});
    channel = absl::StrFormat("serial:%s", config_.agent.serial_port_name);
  }
  launch.args.insert(launch.args.end(), config_.agent.extra_args.begin(),
                     config_.agent.extra_args.end());
  const auto& extra = config_.agent.extra_args;
  if (std::find(extra.begin(), extra.end(), "--state-dir") == extra.end()) {
    launch.args.insert(launch.args.end(), {"--state-dir", AgentStateDir()});
  }
  launch.extra_env = {
      absl::StrFormat("KUASAR_FAKE_VMM=%s", PersonalityName(config_.personality)),
      absl::StrFormat("KUASAR_GUEST_CMDLINE=%s", spec_.kernel_cmdline),
      absl::StrFormat("KUASAR_GUEST_MEMORY_MIB=%d", static_cast<int64_t>(spec_.memory_mib)),
      absl::StrFormat("KUASAR_GUEST_VCPUS=%d", spec_.vcpus),
      absl::StrFormat("KUASAR_GUEST_CHANNEL=%s", channel),
      absl::StrFormat("KUASAR_GUEST_SHARES=%s", absl::StrJoin(spec_.shares, ";")),
  };
  auto agent = AgentProcess::Launch(launch);
  if (!agent.ok()) {
    // A guest without a runnable init panics.
    spdlog::error("op=agent-start agent={} error=\"{}\"", launch.path, agent.status().message());
    AgentExited(W_EXITCODE(127, 0));
    return;
  }
  agent_.emplace(std::move(*agent));
  agent_started_ = Clock::now();
  double boot_ms = Ms(agent_started_ - boot_started_);
  spdlog::info("op=agent-start pid={} channel={} boot_ms={:.1f}", agent_->pid(), channel, boot_ms);
  WatchAgent();
  ArmAgentFaults();
  if (on_started_) on_started_(boot_ms);
}

void Guest::WatchAgent() {
  int fd = agent_->pidfd() >= 0 ? ::dup(agent_->pidfd()) : -1;
  if (fd < 0) return;  // no pidfd: nothing watches; PowerOff still reaps
  agent_wait_ = std::make_unique<asio::posix::stream_descriptor>(io_, fd);
  agent_wait_->async_wait(asio::posix::stream_descriptor::wait_read,
                          [this, gen = generation_](boost::system::error_code ec) {
                            if (ec || gen != generation_ || !agent_) return;
                            std::optional<int> st = agent_->TryReap();
                            if (st) AgentExited(*st);
                          });
}

void Guest::AgentExited(int wait_status) {
  ++generation_;
  agent_.reset();
  agent_wait_.reset();
  kill_timer_.cancel();
  drop_timer_.cancel();
  if (serial_ != nullptr) serial_->DetachGuest();
  if (vsock_ != nullptr) vsock_->DropAll();
  memory_.Release();
  powered_ = false;
  booting_ = false;
  GuestExit exit;
  exit.wait_status = wait_status;
  exit.clean = (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0) ||
               (WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGTERM);
  spdlog::info("op=guest-exit clean={} status=0x{:x}", exit.clean, wait_status);
  if (on_exit_) on_exit_(exit);
}

void Guest::ArmAgentFaults() {
  kill_timer_.cancel();
  drop_timer_.cancel();
  if (!agent_running()) return;
  auto since = Clock::now() - agent_started_;
  auto arm = [&](asio::steady_timer& t, int64_t after_ms, void (Guest::*act)()) {
    if (after_ms < 0) return;
    auto wait = std::max(Clock::duration::zero(), std::chrono::milliseconds(after_ms) - since);
    t.expires_after(wait);
    t.async_wait([this, act, gen = generation_](boost::system::error_code ec) {
      if (!ec && gen == generation_) (this->*act)();
    });
  };
  arm(kill_timer_, faults_.kill_agent_after_ms, &Guest::KillAgent);
  arm(drop_timer_, faults_.drop_channel_after_ms, &Guest::DropChannel);
}

void Guest::OnFaultsChanged() { ArmAgentFaults(); }

void Guest::KillAgent() {
  if (!agent_running()) return;
  spdlog::warn("op=fault kill_agent pid={}", agent_->pid());
  (void)agent_->Signal(SIGKILL);  // the pidfd watcher reports the exit as a crash
}

void Guest::DropChannel() {
  spdlog::warn("op=fault drop_channel");
  if (serial_ != nullptr) serial_->DropBoth();
  if (vsock_ != nullptr) vsock_->DropAll();
}

void Guest::PowerButton() {
  if (agent_running()) (void)agent_->Signal(SIGTERM);
}

void Guest::StopAgent() {
  ++generation_;
  boot_timer_.cancel();
  kill_timer_.cancel();
  drop_timer_.cancel();
  if (agent_) {
    if (paused_) agent_->Freeze(false);  // a stopped process still dies of SIGKILL; be tidy
    agent_->KillAndReap();
    agent_.reset();
  }
  agent_wait_.reset();
  if (serial_ != nullptr) serial_->DetachGuest();
  if (vsock_ != nullptr) vsock_->DropAll();
}

void Guest::PowerOff() {
  StopAgent();
  memory_.Release();
  powered_ = false;
  booting_ = false;
  paused_ = false;
}

absl::Status Guest::Reset() {
  GuestSpec spec = spec_;
  bool was_paused = paused_;
  PowerOff();
  paused_ = was_paused;
  return PowerOn(spec);
}

void Guest::SetPaused(bool paused) {
  if (paused == paused_) return;
  paused_ = paused;
  if (agent_) agent_->Freeze(paused);
  if (serial_ != nullptr) serial_->SetPaused(paused);
  if (vsock_ != nullptr) vsock_->SetPaused(paused);
  if (!booting_) return;
  if (paused) {
    boot_remaining_ = std::max(Clock::duration::zero(), boot_deadline_ - Clock::now());
    ++generation_;  // the pending boot timer is now stale
    boot_timer_.cancel();
  } else {
    ArmBoot(boot_remaining_);
  }
}

}  // namespace kuasar::sim
