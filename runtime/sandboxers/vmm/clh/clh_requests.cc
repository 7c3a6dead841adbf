#include "runtime/sandboxers/vmm/clh/clh_requests.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/common/kernel_cmdline.h"

namespace kuasar::vmm {

using nlohmann::json;

std::vector<std::string> BuildClhArgv(const ClhConfig& config, const VmConfig& vm,
                                      const RestVmmPaths& paths) {
  std::vector<std::string> argv = {config.path, "--api-socket", "path=" + paths.api_socket};
  if (config.debug || vm.debug) argv.push_back("-v");
  return argv;
}

absl::StatusOr<std::string> BuildClhKernelCmdline(const ClhConfig& config, const VmConfig& vm) {
  GuestBootOptions boot;
  boot.console = "ttyS0";
  boot.debug = config.debug || vm.debug;
  if (vm.shared_dir) boot.share_fs = "virtiofs";
  KernelCmdline cmdline = KernelCmdline::ForGuest(boot);
  RETURN_IF_ERROR(cmdline.Merge(config.kernel_params));
  RETURN_IF_ERROR(cmdline.Merge(vm.kernel_params));
  return cmdline.Build();
}

absl::Status CheckClhDeviceId(std::string_view id) {
  bool ok = !id.empty() && id.size() <= 32 && absl::ascii_isalpha(id[0]);
  for (char c : id) {
    ok = ok && (absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '-');
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrFormat("device id \"%s\" must match [A-Za-z][A-Za-z0-9_.-]{0,31}", id));
  }
  return absl::OkStatus();
}

absl::StatusOr<json> ClhDiskConfig(const DiskDevice& disk) {
  RETURN_IF_ERROR(CheckClhDeviceId(disk.id));
  if (disk.path.empty()) return absl::InvalidArgumentError("disk " + disk.id + " has no path");
  if (disk.format != "raw" && disk.format != "qcow2") {
    return absl::InvalidArgumentError(
        absl::StrFormat("disk %s: format \"%s\" is neither raw nor qcow2", disk.id, disk.format));
  }
  // CH detects raw and qcow2 from the image itself.
  return json{{"id", disk.id}, {"path", disk.path}, {"readonly", disk.read_only}};
}

absl::StatusOr<json> ClhNetConfig(const NetDevice& net) {
  RETURN_IF_ERROR(CheckClhDeviceId(net.id));
  if (net.tap.empty()) return absl::InvalidArgumentError("net " + net.id + " has no tap");
  json j = {{"id", net.id}, {"tap", net.tap}};
  if (!net.mac.empty()) j["mac"] = net.mac;
  return j;
}

json ClhRemoveDevice(std::string_view id) { return json{{"id", std::string(id)}}; }

absl::StatusOr<json> BuildClhVmConfig(const ClhConfig& config, const VmConfig& vm,
                                      const RestVmmPaths& paths) {
  ASSIGN_OR_RETURN(std::string cmdline, BuildClhKernelCmdline(config, vm));
  json c = {
      {"cpus", {{"boot_vcpus", vm.vcpus}, {"max_vcpus", vm.vcpus}}},
      // vhost-user (virtiofsd) maps guest memory: it must be shared.
      {"memory",
       {{"size", vm.memory_mib << 20},
        {"shared", vm.shared_dir.has_value()},
        {"hugepages", config.hugepages}}},
      {"payload",
       {{"kernel", vm.kernel_path}, {"initramfs", vm.initrd_path}, {"cmdline", cmdline}}},
      {"serial", {{"mode", "File"}, {"file", paths.console_log}}},
      {"console", {{"mode", "Off"}}},
      {"rng", {{"src", config.entropy_source}}},
      {"vsock", {{"cid", kGuestCid}, {"socket", paths.vsock_socket}}},
  };
  if (!vm.disks.empty()) {
    c["disks"] = json::array();
    for (const DiskDevice& d : vm.disks) {
      ASSIGN_OR_RETURN(json disk, ClhDiskConfig(d));
      c["disks"].push_back(std::move(disk));
    }
  }
  if (!vm.nets.empty()) {
    c["net"] = json::array();
    for (const NetDevice& n : vm.nets) {
      ASSIGN_OR_RETURN(json net, ClhNetConfig(n));
      c["net"].push_back(std::move(net));
    }
  }
  if (vm.shared_dir) {
    c["fs"] = json::array({json{{"tag", vm.shared_dir->tag},
                                {"socket", paths.virtiofs_socket},
                                {"num_queues", 1},
                                {"queue_size", 1024}}});
  }
  return c;
}

absl::StatusOr<std::string> ClhVmState(const json& info) {
  if (!info.is_object() || !info.contains("state") || !info["state"].is_string()) {
    return absl::InternalError(absl::StrFormat("vm.info has no state: %.200s", info.dump()));
  }
  return info["state"].get<std::string>();
}

}  // namespace kuasar::vmm
