#include "runtime/sandboxers/vmm/firecracker/fc_requests.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/common/kernel_cmdline.h"

namespace kuasar::vmm {

using nlohmann::json;

namespace {

constexpr uint32_t kGuestCid = 3;

}  // namespace

std::vector<std::string> BuildFcArgv(const FcConfig& config, const VmConfig& vm,
                                     const RestVmmPaths& paths) {
  std::vector<std::string> argv = {config.path, "--api-sock", paths.api_socket};
  if (config.debug || vm.debug) {
    argv.insert(argv.end(), {"--level", "Debug"});
  }
  return argv;
}

absl::Status CheckFcId(std::string_view id) {
  bool ok = !id.empty() && id.size() <= 64;
  for (char c : id) ok = ok && (absl::ascii_isalnum(c) || c == '_');
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrFormat("id \"%s\": Firecracker ids are [A-Za-z0-9_]{1,64}", id));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<FcRequest>> BuildFcBootRequests(const FcConfig& config,
                                                           const VmConfig& vm,
                                                           const RestVmmPaths& paths) {
  if (vm.shared_dir) {
    return absl::FailedPreconditionError(
        "firecracker has no shared file system (no virtio-fs); use a block device");
  }
  if (vm.vcpus > 32) {
    return absl::InvalidArgumentError(absl::StrFormat("firecracker: %d vCPUs > 32", vm.vcpus));
  }
  if (config.smt && vm.vcpus > 1 && vm.vcpus % 2 != 0) {
    return absl::InvalidArgumentError("firecracker: with smt the vCPU count must be 1 or even");
  }
  GuestBootOptions boot;
  boot.console = "ttyS0";
  boot.debug = config.debug || vm.debug;
  KernelCmdline cmdline = KernelCmdline::ForGuest(boot);
  RETURN_IF_ERROR(cmdline.Merge(config.kernel_params));
  RETURN_IF_ERROR(cmdline.Merge(vm.kernel_params));
  ASSIGN_OR_RETURN(std::string boot_args, cmdline.Build());

  std::vector<FcRequest> r;
  r.push_back(
      {"/machine-config",
       json{{"vcpu_count", vm.vcpus}, {"mem_size_mib", vm.memory_mib}, {"smt", config.smt}}});
  r.push_back({"/boot-source", json{{"kernel_image_path", vm.kernel_path},
                                    {"initrd_path", vm.initrd_path},
                                    {"boot_args", boot_args}}});
  for (const DiskDevice& d : vm.disks) {
    RETURN_IF_ERROR(CheckFcId(d.id));
    if (d.format != "raw") {
      return absl::InvalidArgumentError(
          absl::StrFormat("disk %s: firecracker reads raw images only, not %s", d.id, d.format));
    }
    r.push_back({"/drives/" + d.id, json{{"drive_id", d.id},
                                         {"path_on_host", d.path},
                                         {"is_root_device", false},
                                         {"is_read_only", d.read_only}}});
  }
  for (const NetDevice& n : vm.nets) {
    RETURN_IF_ERROR(CheckFcId(n.id));
    if (n.tap.empty()) return absl::InvalidArgumentError("net " + n.id + " has no tap");
    json body = {{"iface_id", n.id}, {"host_dev_name", n.tap}};
    if (!n.mac.empty()) body["guest_mac"] = n.mac;
    r.push_back({"/network-interfaces/" + n.id, std::move(body)});
  }
  r.push_back({"/vsock", json{{"guest_cid", kGuestCid}, {"uds_path", paths.vsock_socket}}});
  return r;
}

json FcAction(std::string_view action_type) {
  return json{{"action_type", std::string(action_type)}};
}

absl::StatusOr<std::string> FcInstanceState(const json& info) {
  if (!info.is_object() || !info.contains("state") || !info["state"].is_string()) {
    return absl::InternalError(absl::StrFormat("GET / has no state: %.200s", info.dump()));
  }
  return info["state"].get<std::string>();
}

}  // namespace kuasar::vmm
