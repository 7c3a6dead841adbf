#include "sim/clh/clh_cli.h"

#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/base/status_macros.h"
#include "sim/common/option_list.h"

namespace kuasar::sim::clh {

using nlohmann::json;

namespace {

const char* const kSingle[] = {"--api-socket", "--kernel",        "--initramfs",     "--cmdline",
                               "--cpus",       "--memory",        "--firmware",      "--serial",
                               "--console",    "--rng",           "--vsock",         "--balloon",
                               "--log-file",   "--seccomp",       "--event-monitor", "--platform",
                               "--tpm",        "--debug-console", "--restore",       "--gdb"};
const char* const kMulti[] = {
    "--disk", "--net",         "--fs",   "--pmem",           "--device",      "--user-device",
    "--vdpa", "--memory-zone", "--numa", "--landlock-rules", "--pci-segment", "--sgx-epc"};
const char* const kFlags[] = {"--pvpanic", "--watchdog", "--landlock", "--version",
                              "-V",        "--help",     "-h"};

template <size_t N>
bool In(const char* const (&list)[N], std::string_view s) {
  for (const char* e : list) {
    if (s == e) return true;
  }
  return false;
}

absl::Status OptionError(std::string_view flag, std::string_view what) {
  return absl::FailedPreconditionError(absl::StrFormat("Error parsing %s: %s", flag, what));
}

// Converts "k=v,..." into a JSON object with the given typed keys.
enum class K { kStr, kBool, kUint, kSize, kFds };
absl::StatusOr<json> ToJson(std::string_view flag, const std::string& text,
                            std::initializer_list<std::pair<const char*, K>> keys,
                            std::initializer_list<std::pair<const char*, const char*>> rename) {
  OptionList opts = ParseClhOptions(text);
  json out = json::object();
  for (const auto& [k, v] : opts.items) {
    const K* type = nullptr;
    for (const auto& [name, t] : keys) {
      if (k == name) type = &t;
    }
    if (type == nullptr) return OptionError(flag, absl::StrFormat("unknown option: %s", k));
    std::string field = k;
    for (const auto& [from, to] : rename) {
      if (k == from) field = to;
    }
    switch (*type) {
      case K::kStr:
        out[field] = v;
        break;
      case K::kBool: {
        auto b = ParseToggle(v);
        if (!b)
          return OptionError(flag, absl::StrFormat("Error parsing %s: invalid toggle %s", k, v));
        out[field] = *b;
        break;
      }
      case K::kUint: {
        uint64_t n = 0;
        if (!absl::SimpleAtoi(v, &n))
          return OptionError(flag, absl::StrFormat("invalid value %s for %s", v, k));
        out[field] = n;
        break;
      }
      case K::kSize: {
        auto n = ParseSize(v, 1);
        if (!n.ok()) return OptionError(flag, std::string(n.status().message()));
        out[field] = *n;
        break;
      }
      case K::kFds: {
        json fds = json::array();
        std::string inner = v.size() >= 2 && v.front() == '[' ? v.substr(1, v.size() - 2) : v;
        for (const auto& [fd, ignored] : ParseQemuOptions(inner, false).items) {
          int n = 0;
          if (!absl::SimpleAtoi(fd, &n))
            return OptionError(flag, absl::StrFormat("invalid fd %s", fd));
          fds.push_back(n);
        }
        out[field] = fds;
        break;
      }
    }
  }
  return out;
}

absl::StatusOr<json> ConsoleJson(std::string_view flag, const std::string& v) {
  static const std::map<std::string, std::string> kModes = {
      {"off", "Off"}, {"null", "Null"}, {"pty", "Pty"}, {"tty", "Tty"}};
  if (auto it = kModes.find(v); it != kModes.end())
    return json{{"mode", it->second}, {"iommu", false}};
  if (v.rfind("file=", 0) == 0)
    return json{{"mode", "File"}, {"file", v.substr(5)}, {"iommu", false}};
  if (v.rfind("socket=", 0) == 0) {
    return json{{"mode", "Socket"}, {"socket", v.substr(7)}, {"iommu", false}};
  }
  return OptionError(flag, absl::StrFormat("invalid console mode %s", v));
}

absl::Status AddVmOption(const std::string& flag, const std::string& v, json* c) {
  if (flag == "--kernel") {
    (*c)["payload"]["kernel"] = v;
  } else if (flag == "--initramfs") {
    (*c)["payload"]["initramfs"] = v;
  } else if (flag == "--cmdline") {
    (*c)["payload"]["cmdline"] = v;
  } else if (flag == "--firmware") {
    (*c)["payload"]["firmware"] = v;
  } else if (flag == "--cpus") {
    ASSIGN_OR_RETURN(json cpus, ToJson(flag, v,
                                       {{"boot", K::kUint},
                                        {"max", K::kUint},
                                        {"topology", K::kStr},
                                        {"kvm_hyperv", K::kBool},
                                        {"max_phys_bits", K::kUint},
                                        {"affinity", K::kStr},
                                        {"features", K::kStr}},
                                       {{"boot", "boot_vcpus"}, {"max", "max_vcpus"}}));
    cpus.erase("topology"), cpus.erase("affinity"), cpus.erase("features");
    if (!cpus.contains("boot_vcpus")) cpus["boot_vcpus"] = 1;
    if (!cpus.contains("max_vcpus")) cpus["max_vcpus"] = cpus["boot_vcpus"];
    (*c)["cpus"] = cpus;
  } else if (flag == "--memory") {
    ASSIGN_OR_RETURN((*c)["memory"], ToJson(flag, v,
                                            {{"size", K::kSize},
                                             {"shared", K::kBool},
                                             {"hugepages", K::kBool},
                                             {"hugepage_size", K::kSize},
                                             {"prefault", K::kBool},
                                             {"thp", K::kBool},
                                             {"mergeable", K::kBool},
                                             {"hotplug_size", K::kSize},
                                             {"hotplug_method", K::kStr}},
                                            {}));
  } else if (flag == "--disk") {
    ASSIGN_OR_RETURN(json d, ToJson(flag, v,
                                    {{"path", K::kStr},
                                     {"readonly", K::kBool},
                                     {"direct", K::kBool},
                                     {"iommu", K::kBool},
                                     {"num_queues", K::kUint},
                                     {"queue_size", K::kUint},
                                     {"vhost_user", K::kBool},
                                     {"socket", K::kStr},
                                     {"id", K::kStr},
                                     {"serial", K::kStr},
                                     {"pci_segment", K::kUint}},
                                    {{"socket", "vhost_socket"}}));
    (*c)["disks"].push_back(d);
  } else if (flag == "--net") {
    ASSIGN_OR_RETURN(json n, ToJson(flag, v,
                                    {{"tap", K::kStr},
                                     {"ip", K::kStr},
                                     {"mask", K::kStr},
                                     {"mac", K::kStr},
                                     {"host_mac", K::kStr},
                                     {"mtu", K::kUint},
                                     {"iommu", K::kBool},
                                     {"num_queues", K::kUint},
                                     {"queue_size", K::kUint},
                                     {"id", K::kStr},
                                     {"vhost_user", K::kBool},
                                     {"socket", K::kStr},
                                     {"fd", K::kFds},
                                     {"pci_segment", K::kUint}},
                                    {{"socket", "vhost_socket"}, {"fd", "fds"}}));
    (*c)["net"].push_back(n);
  } else if (flag == "--fs") {
    ASSIGN_OR_RETURN(json f, ToJson(flag, v,
                                    {{"tag", K::kStr},
                                     {"socket", K::kStr},
                                     {"num_queues", K::kUint},
                                     {"queue_size", K::kUint},
                                     {"id", K::kStr},
                                     {"pci_segment", K::kUint}},
                                    {}));
    (*c)["fs"].push_back(f);
  } else if (flag == "--pmem") {
    ASSIGN_OR_RETURN(json p, ToJson(flag, v,
                                    {{"file", K::kStr},
                                     {"size", K::kSize},
                                     {"iommu", K::kBool},
                                     {"discard_writes", K::kBool},
                                     {"id", K::kStr},
                                     {"pci_segment", K::kUint}},
                                    {}));
    (*c)["pmem"].push_back(p);
  } else if (flag == "--device") {
    ASSIGN_OR_RETURN(
        json d,
        ToJson(flag, v,
               {{"path", K::kStr}, {"iommu", K::kBool}, {"id", K::kStr}, {"pci_segment", K::kUint}},
               {}));
    (*c)["devices"].push_back(d);
  } else if (flag == "--vsock") {
    ASSIGN_OR_RETURN((*c)["vsock"], ToJson(flag, v,
                                           {{"cid", K::kUint},
                                            {"socket", K::kStr},
                                            {"iommu", K::kBool},
                                            {"id", K::kStr},
                                            {"pci_segment", K::kUint}},
                                           {}));
  } else if (flag == "--rng") {
    ASSIGN_OR_RETURN((*c)["rng"], ToJson(flag, v, {{"src", K::kStr}, {"iommu", K::kBool}}, {}));
  } else if (flag == "--serial" || flag == "--console") {
    ASSIGN_OR_RETURN((*c)[flag.substr(2)], ConsoleJson(flag, v));
  } else if (flag == "--balloon") {
    ASSIGN_OR_RETURN((*c)["balloon"], ToJson(flag, v,
                                             {{"size", K::kSize},
                                              {"deflate_on_oom", K::kBool},
                                              {"free_page_reporting", K::kBool}},
                                             {}));
  }
  // --platform, --numa, --memory-zone, ...: accepted, not modelled.
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ClhOptions> ParseClhArgs(const std::vector<std::string>& args) {
  ClhOptions o;
  json config = json::object();
  bool payload = false;
  std::vector<std::pair<std::string, std::string>> vm_opts;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    std::string inline_value;
    bool has_inline = false;
    if (a.rfind("--", 0) == 0 && a.find('=') != std::string::npos) {
      inline_value = a.substr(a.find('=') + 1);
      a = a.substr(0, a.find('='));
      has_inline = true;
    }
    if (a.size() >= 2 && a[0] == '-' && a[1] == 'v' &&
        a.find_first_not_of('v', 1) == std::string::npos) {
      o.verbosity += static_cast<int>(a.size()) - 1;
      continue;
    }
    if (In(kFlags, a)) {
      if (a == "--version" || a == "-V") o.version = true;
      if (a == "--help" || a == "-h") o.help = true;
      if (a == "--pvpanic") config["pvpanic"] = true;
      if (a == "--watchdog") config["watchdog"] = true;
      continue;
    }
    bool multi = In(kMulti, a);
    if (!multi && !In(kSingle, a)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "error: unexpected argument '%s' found\n\nUsage: cloud-hypervisor [OPTIONS]\n\nFor more "
          "information, try '--help'.",
          args[i]));
    }
    std::vector<std::string> values;
    if (has_inline) values.push_back(inline_value);
    while (i + 1 < args.size() && (values.empty() || multi) &&
           (args[i + 1].empty() || args[i + 1][0] != '-')) {
      values.push_back(args[++i]);
    }
    if (values.empty()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "error: a value is required for '%s <%s>' but none was supplied", a, a.substr(2)));
    }
    for (const std::string& v : values) {
      if (a == "--api-socket") {
        OptionList opts = ParseClhOptions(v);
        if (auto fd = opts.Get("fd")) {
          if (!absl::SimpleAtoi(*fd, &o.api_fd)) return OptionError(a, "invalid fd");
        } else if (auto path = opts.Get("path")) {
          o.api_socket = *path;
        } else {
          o.api_socket = v;  // the bare form
        }
      } else if (a == "--log-file") {
        o.log_file = v;
      } else {
        if (a == "--kernel" || a == "--firmware") payload = true;
        vm_opts.emplace_back(a, v);
      }
    }
  }
  if (payload) {
    for (const auto& [flag, v] : vm_opts) RETURN_IF_ERROR(AddVmOption(flag, v, &config));
    if (!config.contains("cpus")) config["cpus"] = json{{"boot_vcpus", 1}, {"max_vcpus", 1}};
    if (!config.contains("memory")) config["memory"] = json{{"size", 512ull << 20}};
    o.vm_config = std::move(config);
  }
  return o;
}

}  // namespace kuasar::sim::clh
