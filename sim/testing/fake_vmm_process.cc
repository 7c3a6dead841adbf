#include "sim/testing/fake_vmm_process.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_split.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/status_macros.h"
#include "sim/testing/rest_client.h"

namespace kuasar::sim::testing {

bool WaitUntil(const std::function<bool()>& cond, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

absl::StatusOr<FakeVmmProcess> FakeVmmProcess::Start(const FakeVmmOptions& o) {
  std::string bin = KUASAR_FAKE_VMM_BIN;
  std::vector<std::string> argv;
  if (o.via_symlink) {
    argv.push_back(std::filesystem::path(bin).parent_path().string() + "/fake-vmm/" +
                   o.personality);
  } else {
    argv = {bin, "--personality", o.personality};
  }
  argv.insert(argv.end(), {"--agent", o.agent, "--model", o.model, "--sim-log-level", "debug"});
  argv.insert(argv.end(), o.sim_flags.begin(), o.sim_flags.end());
  argv.insert(argv.end(), o.args.begin(), o.args.end());
  std::string log = o.log_file.empty() ? "/dev/null" : o.log_file;
  UniqueFd out(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!out) return ErrnoStatus(errno, "open", log);
  SpawnOptions so;
  so.stdout_fd = out.get();
  so.stderr_fd = out.get();
  ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(argv, so));
  FakeVmmProcess p(std::move(child), log);
  if (!o.wait_socket.empty()) {
    bool up = WaitUntil(
        [&] { return ConnectUnix(o.wait_socket).ok() || p.child_.reaped() || p.WaitExit(0).ok(); },
        5000);
    if (!up || p.child_.reaped()) {
      return absl::UnavailableError("fake VMM did not come up; log:\n" + p.Log());
    }
  }
  return p;
}

std::string FakeVmmProcess::Log() const {
  auto text = ReadSmallFile(log_, 1 << 20);
  return text.ok() ? *text : std::string();
}

std::vector<pid_t> FakeVmmProcess::Children() const {
  std::vector<pid_t> out;
  std::error_code ec;
  std::string task_dir = "/proc/" + std::to_string(child_.pid()) + "/task";
  for (const auto& t : std::filesystem::directory_iterator(task_dir, ec)) {
    std::ifstream f(t.path() / "children");
    pid_t pid;
    while (f >> pid) out.push_back(pid);
  }
  return out;
}

std::optional<pid_t> FakeVmmProcess::WaitAgent(int timeout_ms) const {
  std::optional<pid_t> agent;
  WaitUntil(
      [&] {
        auto c = Children();
        if (!c.empty()) agent = c.front();
        return agent.has_value();
      },
      timeout_ms);
  return agent;
}

absl::StatusOr<int64_t> PssKb(pid_t pid) {
  ASSIGN_OR_RETURN(std::string text,
                   ReadSmallFile("/proc/" + std::to_string(pid) + "/smaps_rollup", 1 << 16));
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Pss:", 0) == 0) return std::stoll(line.substr(4));
  }
  return absl::NotFoundError("no Pss line");
}

bool ProcessAlive(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(f, stat)) return false;
  size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z' &&
         stat[close + 2] != 'X';
}

std::string WriteFile(const std::string& dir, const std::string& name, const std::string& text) {
  std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

}  // namespace kuasar::sim::testing
