#include "harness/pss.h"

#include <dirent.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "runtime/base/atomic_file.h"

namespace kuasar::harness {
namespace {

std::vector<pid_t> AllPids() {
  std::vector<pid_t> pids;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return pids;
  while (dirent* e = ::readdir(d)) {
    int pid = 0;
    if (absl::SimpleAtoi(e->d_name, &pid) && pid > 0) pids.push_back(pid);
  }
  ::closedir(d);
  return pids;
}

std::vector<std::string> Argv(pid_t pid) {
  std::vector<std::string> argv;
  auto text = ReadSmallFile(absl::StrFormat("/proc/%d/cmdline", pid), 1 << 20);
  if (!text.ok()) return argv;
  size_t start = 0;
  while (start < text->size()) {
    size_t end = text->find('\0', start);
    if (end == std::string::npos) end = text->size();
    argv.push_back(text->substr(start, end - start));
    start = end + 1;
  }
  return argv;
}

}  // namespace

absl::StatusOr<uint64_t> ReadPssKiB(pid_t pid) {
  auto text = ReadSmallFile(absl::StrFormat("/proc/%d/smaps_rollup", pid), 1 << 16);
  if (!text.ok()) return absl::NotFoundError(absl::StrFormat("process %d is gone", pid));
  size_t pos = text->find("\nPss:");
  if (pos == std::string::npos) {
    // Kernel threads have an empty rollup.
    return uint64_t{0};
  }
  return std::strtoull(text->c_str() + pos + 5, nullptr, 10);
}

bool ProcessMatcher::Matches(const std::vector<std::string>& argv) const {
  if (argv.empty()) return false;
  std::string base = std::filesystem::path(argv[0]).filename().string();
  bool named = false;
  for (const auto& n : names) named |= base == n;
  if (!named) return false;
  if (scope.empty()) return true;
  for (const auto& a : argv) {
    if (a.find(scope) != std::string::npos) return true;
  }
  return false;
}

std::vector<pid_t> FindProcesses(const ProcessMatcher& matcher) {
  std::vector<pid_t> out;
  for (pid_t pid : AllPids()) {
    if (matcher.Matches(Argv(pid))) out.push_back(pid);
  }
  return out;
}

SetSample SamplePss(const ProcessMatcher& matcher) {
  SetSample s;
  for (pid_t pid : FindProcesses(matcher)) {
    auto pss = ReadPssKiB(pid);
    if (!pss.ok()) continue;
    s.pss_kib += *pss;
    ++s.processes;
  }
  return s;
}

SetSample SampleNodePss() {
  SetSample s;
  for (pid_t pid : AllPids()) {
    auto pss = ReadPssKiB(pid);
    if (!pss.ok()) continue;
    s.pss_kib += *pss;
    ++s.processes;
  }
  return s;
}

}  // namespace kuasar::harness
