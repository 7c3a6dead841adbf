#include "runtime/sandboxers/vmm/stratovirt/sv_command_line.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/common/kernel_cmdline.h"

namespace kuasar::vmm {
namespace {

void Add(std::vector<std::string>& argv, std::string flag, std::string value) {
  argv.push_back(std::move(flag));
  argv.push_back(std::move(value));
}

// Ids and paths go into comma-separated option lists: no commas allowed.
absl::Status CheckOptionValue(std::string_view what, std::string_view v) {
  if (v.empty() || v.find(',') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrFormat("stratovirt: %s \"%s\" is empty or has a comma", what, v));
  }
  return absl::OkStatus();
}

absl::Status CheckId(std::string_view id) {
  bool ok = !id.empty() && id.size() <= 32 && absl::ascii_isalpha(id[0]);
  for (char c : id) ok = ok && (absl::ascii_isalnum(c) || c == '_' || c == '-');
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrFormat("device id \"%s\" must match [A-Za-z][A-Za-z0-9_-]{0,31}", id));
  }
  return absl::OkStatus();
}

}  // namespace

SvPaths SvPaths::For(const VmConfig& vm) {
  SvPaths p;
  p.qmp_socket = vm.socket_dir + "/qmp.sock";
  p.agent_socket = vm.socket_dir + "/agent.sock";
  p.vmm_log = vm.state_dir + "/stratovirt.log";
  return p;
}

absl::StatusOr<std::vector<std::string>> BuildSvArgv(const SvConfig& config, const VmConfig& vm,
                                                     const SvPaths& paths) {
  if (vm.shared_dir) {
    return absl::FailedPreconditionError(
        "stratovirt: shared directories (vhost-user-fs) are not implemented by this driver");
  }
  bool pci = SvMachineIsPci(config);
  GuestBootOptions boot;
  boot.console = "ttyS0";
  boot.debug = config.debug || vm.debug;
  KernelCmdline cmdline = KernelCmdline::ForGuest(boot);
  RETURN_IF_ERROR(cmdline.Merge(config.kernel_params));
  RETURN_IF_ERROR(cmdline.Merge(vm.kernel_params));
  ASSIGN_OR_RETURN(std::string append, cmdline.Build());
  for (const std::string& p :
       {vm.kernel_path, vm.initrd_path, paths.qmp_socket, paths.agent_socket}) {
    RETURN_IF_ERROR(CheckOptionValue("path", p));
  }

  std::vector<std::string> argv = {config.path};
  Add(argv, "-name", "kuasar-" + vm.sandbox_id);
  Add(argv, "-machine", config.machine_type);
  Add(argv, "-smp", absl::StrFormat("cpus=%d", vm.vcpus));
  Add(argv, "-m", absl::StrFormat("%dM", vm.memory_mib));
  Add(argv, "-kernel", vm.kernel_path);
  Add(argv, "-initrd", vm.initrd_path);
  Add(argv, "-append", append);
  Add(argv, "-qmp", absl::StrFormat("unix:%s,server,nowait", paths.qmp_socket));
  if (config.mem_prealloc) argv.push_back("-mem-prealloc");
  if (pci && !config.firmware.empty()) {
    RETURN_IF_ERROR(CheckOptionValue("firmware", config.firmware));
    Add(argv, "-drive", absl::StrFormat("file=%s,if=pflash,unit=0,readonly=true", config.firmware));
  }
  // PCI slots on pcie.0 from 2 on: serial, then disks, then nets.
  int slot = 2;
  auto where = [&]() { return pci ? absl::StrFormat(",bus=pcie.0,addr=0x%x", slot++) : ""; };
  Add(argv, "-device",
      absl::StrFormat("%s,id=virtio-serial0%s", pci ? "virtio-serial-pci" : "virtio-serial-device",
                      where()));
  Add(argv, "-chardev",
      absl::StrFormat("socket,id=charagent,path=%s,server,nowait", paths.agent_socket));
  Add(argv, "-device", "virtserialport,chardev=charagent,id=channel0,name=agent.channel.0,nr=1");
  for (const DiskDevice& d : vm.disks) {
    RETURN_IF_ERROR(CheckId(d.id));
    RETURN_IF_ERROR(CheckOptionValue("disk path", d.path));
    if (d.format != "raw" && d.format != "qcow2") {
      return absl::InvalidArgumentError("disk " + d.id + ": format must be raw or qcow2");
    }
    Add(argv, "-drive",
        absl::StrFormat("id=%s,file=%s,readonly=%s,format=%s", d.id, d.path,
                        d.read_only ? "on" : "off", d.format));
    Add(argv, "-device",
        absl::StrFormat("%s,drive=%s,id=%s-blk%s", pci ? "virtio-blk-pci" : "virtio-blk-device",
                        d.id, d.id, where()));
  }
  for (const NetDevice& n : vm.nets) {
    RETURN_IF_ERROR(CheckId(n.id));
    RETURN_IF_ERROR(CheckOptionValue("tap", n.tap));
    Add(argv, "-netdev", absl::StrFormat("tap,id=%s,ifname=%s", n.id, n.tap));
    std::string mac = n.mac.empty() ? "" : ",mac=" + n.mac;
    Add(argv, "-device",
        absl::StrFormat("%s,netdev=%s,id=%s-net%s%s", pci ? "virtio-net-pci" : "virtio-net-device",
                        n.id, n.id, mac, where()));
  }
  argv.push_back("-disable-seccomp");
  return argv;
}

}  // namespace kuasar::vmm
