#include "sim/common/vmm_context.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"

namespace kuasar::sim {

void VmmContext::ModelStartup() {
  double ms = sampler.StartupMs();
  if (ms <= 0) return;
  spdlog::debug("op=vmm-startup ms={:.1f}", ms);
  std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
}

absl::Status RedirectStderr(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return ErrnoStatus(errno, "open log file", path);
  ::dup2(fd, 2);
  ::close(fd);
  return absl::OkStatus();
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace kuasar::sim
