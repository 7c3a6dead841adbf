#include "runtime/sandboxers/vmm/clh/clh_config.h"

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"

namespace kuasar::vmm {

absl::StatusOr<ClhConfig> ParseClhConfig(TomlSection& s) {
  ClhConfig c;
  std::string driver = "cloud-hypervisor";
  RETURN_IF_ERROR(s.Get("driver", &driver));
  if (driver != "cloud-hypervisor") {
    return s.Error("driver", absl::StrFormat("\"%s\" is not cloud-hypervisor", driver));
  }
  RETURN_IF_ERROR(s.Get("path", &c.path));
  RETURN_IF_ERROR(s.Get("kernel_path", &c.kernel_path));
  std::string image_path;
  RETURN_IF_ERROR(s.Get("image_path", &image_path));
  if (!image_path.empty()) {
    return s.Error("image_path",
                   "a root disk image is not supported; the guest boots from initrd_path");
  }
  RETURN_IF_ERROR(s.Get("initrd_path", &c.initrd_path));
  if (c.initrd_path.empty()) return s.Error("initrd_path", "the guest needs an initrd");
  RETURN_IF_ERROR(s.Get("kernel_params", &c.kernel_params));
  RETURN_IF_ERROR(s.Get("vcpus", &c.vcpus, 1, 254));
  RETURN_IF_ERROR(s.Get("memory_in_mb", &c.memory_in_mb, 64, 1 << 20));
  RETURN_IF_ERROR(s.Get("hugepages", &c.hugepages));
  RETURN_IF_ERROR(s.Get("entropy_source", &c.entropy_source));
  RETURN_IF_ERROR(s.Get("debug", &c.debug));
  RETURN_IF_ERROR(s.Get("agent_vsock_port", &c.agent_vsock_port, 1, 0xfffffffe));
  RETURN_IF_ERROR(s.Get("api_timeout_ms", &c.api_timeout_ms, 100, 600'000));
  // Kuasar's enable_tracing has no tracer here: accepted so its configs load.
  bool tracing = false;
  RETURN_IF_ERROR(s.Get("enable_tracing", &tracing));

  TomlSection task(nullptr, "", "");
  RETURN_IF_ERROR(s.Sub("task", &task));
  bool task_debug = false;
  RETURN_IF_ERROR(task.Get("debug", &task_debug));
  RETURN_IF_ERROR(task.Get("enable_tracing", &tracing));
  RETURN_IF_ERROR(task.CheckNoUnknownKeys());
  c.debug = c.debug || task_debug;

  TomlSection fs(nullptr, "", "");
  RETURN_IF_ERROR(s.Sub("virtiofsd", &fs));
  RETURN_IF_ERROR(fs.Get("path", &c.virtiofsd_path));
  RETURN_IF_ERROR(fs.Get("cache", &c.virtiofs_cache));
  if (c.virtiofs_cache == "none") c.virtiofs_cache = "never";
  if (c.virtiofs_cache != "auto" && c.virtiofs_cache != "always" && c.virtiofs_cache != "never") {
    return fs.Error("cache", "expected auto, always or never");
  }
  int64_t threads = 0;
  RETURN_IF_ERROR(fs.Get("thread_pool_size", &threads, 0, 1024));
  if (threads > 0)
    c.virtiofsd_extra_args.push_back(absl::StrFormat("--thread-pool-size=%d", threads));
  bool syslog = false;
  RETURN_IF_ERROR(fs.Get("syslog", &syslog));
  if (syslog) c.virtiofsd_extra_args.push_back("--syslog");
  // Spelled differently by the C and Rust daemons: accepted, not passed (docs say so).
  std::string log_level;
  RETURN_IF_ERROR(fs.Get("log_level", &log_level));
  std::vector<std::string> extra;
  RETURN_IF_ERROR(fs.Get("extra_args", &extra));
  c.virtiofsd_extra_args.insert(c.virtiofsd_extra_args.end(), extra.begin(), extra.end());
  RETURN_IF_ERROR(fs.CheckNoUnknownKeys());
  RETURN_IF_ERROR(ParseVmmCapabilities(s, &c.capabilities));
  RETURN_IF_ERROR(s.CheckNoUnknownKeys());
  return c;
}

absl::StatusOr<ClhConfig> ParseClhConfig(const Config& config) {
  TomlSection top(config.root.get(), "", config.source), s(nullptr, "", "");
  RETURN_IF_ERROR(top.Sub("hypervisor", &s));
  return ParseClhConfig(s);
}

}  // namespace kuasar::vmm
