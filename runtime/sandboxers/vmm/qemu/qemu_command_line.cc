#include "runtime/sandboxers/vmm/qemu/qemu_command_line.h"

#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/common/kernel_cmdline.h"

namespace kuasar::vmm {
namespace {

bool Matches(std::string_view s, size_t max, bool first_alpha) {
  if (s.empty() || s.size() > max) return false;
  if (first_alpha && !absl::ascii_isalpha(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

bool IsMac(std::string_view mac) {
  if (mac.size() != 17) return false;
  for (size_t i = 0; i < mac.size(); ++i) {
    bool colon = i % 3 == 2;
    if (colon ? mac[i] != ':' : !absl::ascii_isxdigit(static_cast<unsigned char>(mac[i]))) {
      return false;
    }
  }
  return true;
}

void Add(std::vector<std::string>& argv, std::string_view flag, std::string value) {
  argv.emplace_back(flag);
  argv.push_back(std::move(value));
}

absl::Status AddShare(const QemuConfig& config, const SharedDir& dir, const QemuPaths& paths,
                      std::vector<std::string>& argv) {
  if (!Matches(dir.tag, 36, false)) {
    return absl::InvalidArgumentError(absl::StrFormat("bad shared dir tag '%s'", dir.tag));
  }
  if (dir.host_path.empty() || dir.host_path[0] != '/') {
    return absl::InvalidArgumentError("the shared dir must be an absolute path");
  }
  switch (config.share_fs) {
    case ShareFs::kVirtio9p:
      Add(argv, "-fsdev",
          absl::StrFormat("local,id=fsdev0,path=%s,security_model=none,multidevs=remap%s",
                          QemuOptValue(dir.host_path), dir.read_only ? ",readonly=on" : ""));
      Add(argv, "-device", absl::StrFormat("virtio-9p-pci,fsdev=fsdev0,mount_tag=%s", dir.tag));
      return absl::OkStatus();
    case ShareFs::kVirtioFs:
      Add(argv, "-chardev",
          absl::StrFormat("socket,id=vfs0,path=%s", QemuOptValue(paths.virtiofs_socket)));
      Add(argv, "-device",
          absl::StrFormat("vhost-user-fs-pci,chardev=vfs0,tag=%s,queue-size=1024", dir.tag));
      return absl::OkStatus();
    case ShareFs::kNone:
      break;
  }
  return absl::FailedPreconditionError(
      "the VM asks for a shared dir but [hypervisor] share_fs is \"none\"");
}

absl::Status AddNet(const NetDevice& net, Accel accel, std::vector<std::string>& argv) {
  RETURN_IF_ERROR(CheckNetDevice(net));
  // vhost-net needs KVM's ioeventfd; under TCG QEMU's own virtio-net backend runs.
  bool vhost = accel == Accel::kKvm && ::access("/dev/vhost-net", R_OK | W_OK) == 0;
  Add(argv, "-netdev",
      absl::StrFormat("tap,id=netdev-%s,ifname=%s,script=no,downscript=no%s", net.id, net.tap,
                      vhost ? ",vhost=on" : ""));
  Add(argv, "-device",
      absl::StrFormat("virtio-net-pci,netdev=netdev-%s,id=%s%s", net.id, net.id,
                      net.mac.empty() ? "" : ",mac=" + net.mac));
  return absl::OkStatus();
}

absl::Status AddDisk(const DiskDevice& disk, std::vector<std::string>& argv) {
  RETURN_IF_ERROR(CheckDiskDevice(disk));
  Add(argv, "-blockdev", BlockdevNode(disk).dump());
  Add(argv, "-device", absl::StrFormat("virtio-blk-pci,drive=drive-%s,id=%s", disk.id, disk.id));
  return absl::OkStatus();
}

}  // namespace

QemuPaths QemuPaths::For(const VmConfig& vm) {
  QemuPaths p;
  p.qmp_socket = vm.socket_dir + "/qmp.sock";
  p.agent_socket = vm.socket_dir + "/agent.sock";
  p.virtiofs_socket = vm.socket_dir + "/virtiofs.sock";
  p.console_log = vm.state_dir + "/console.log";
  p.vmm_log = vm.state_dir + "/qemu.log";
  p.virtiofsd_log = vm.state_dir + "/virtiofsd.log";
  p.pid_file = vm.state_dir + "/qemu.pid";
  return p;
}

std::string QemuOptValue(std::string_view value) {
  return absl::StrReplaceAll(absl::string_view(value.data(), value.size()), {{",", ",,"}});
}

std::string_view BlockFileDriver(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode) ? "host_device" : "file";
}

absl::Status CheckNetDevice(const NetDevice& net) {
  RETURN_IF_ERROR(CheckDeviceId(net.id));
  if (!Matches(net.tap, 15, false)) {
    return absl::InvalidArgumentError(absl::StrFormat("bad tap name '%s'", net.tap));
  }
  if (!net.mac.empty() && !IsMac(net.mac)) {
    return absl::InvalidArgumentError(absl::StrFormat("bad MAC address '%s'", net.mac));
  }
  return absl::OkStatus();
}

absl::Status CheckDiskDevice(const DiskDevice& disk) {
  RETURN_IF_ERROR(CheckDeviceId(disk.id));
  if (disk.format != "raw" && disk.format != "qcow2") {
    return absl::InvalidArgumentError(
        absl::StrFormat("disk %s: format must be raw or qcow2", disk.id));
  }
  if (disk.path.empty() || disk.path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrFormat("disk %s: needs an absolute path", disk.id));
  }
  return absl::OkStatus();
}

nlohmann::json BlockdevNode(const DiskDevice& disk) {
  return {{"driver", disk.format},
          {"node-name", "drive-" + disk.id},
          {"read-only", disk.read_only},
          {"file",
           {{"driver", BlockFileDriver(disk.path)},
            {"filename", disk.path},
            {"read-only", disk.read_only}}}};
}

absl::Status CheckDeviceId(std::string_view id) {
  if (!Matches(id, 32, true)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bad device id '%s': expected [A-Za-z][A-Za-z0-9_.-]{0,31}", id));
  }
  return absl::OkStatus();
}

bool MachineCanHotplug(const QemuConfig& config) { return config.machine_type != "microvm"; }

std::vector<std::string> HotplugBuses(const QemuConfig& config) {
  std::vector<std::string> buses;
  if (config.machine_type == "q35") {
    for (int64_t i = 0; i < config.pcie_root_ports; ++i)
      buses.push_back(absl::StrFormat("hp%d", i));
  } else if (config.machine_type == "pc") {
    buses.push_back("");
  }
  return buses;
}

absl::StatusOr<std::string> BuildGuestKernelCmdline(const QemuConfig& config, const VmConfig& vm) {
  GuestBootOptions boot;
  boot.console = "ttyS0";
  boot.debug = config.debug || vm.debug;
  if (vm.shared_dir) {
    boot.share_fs = config.share_fs == ShareFs::kVirtio9p ? "9p" : "virtiofs";
  }
  KernelCmdline cmdline = KernelCmdline::ForGuest(boot);
  RETURN_IF_ERROR(cmdline.Merge(config.kernel_params));
  RETURN_IF_ERROR(cmdline.Merge(vm.kernel_params));
  return cmdline.Build();
}

absl::StatusOr<std::vector<std::string>> BuildQemuCommandLine(const QemuConfig& config,
                                                              const VmConfig& vm,
                                                              const QemuPaths& paths, Accel accel) {
  if (accel == Accel::kAuto) return absl::InvalidArgumentError("accel must be resolved");
  if (vm.vcpus < 1 || vm.memory_mib < 64) {
    return absl::InvalidArgumentError(
        absl::StrFormat("VM %s: needs at least 1 vCPU and 64 MiB (got %d, %d MiB)", vm.sandbox_id,
                        vm.vcpus, vm.memory_mib));
  }
  if (vm.kernel_path.empty() || vm.initrd_path.empty()) {
    return absl::InvalidArgumentError("the VM needs a kernel and an initrd");
  }
  ASSIGN_OR_RETURN(std::string cmdline, BuildGuestKernelCmdline(config, vm));
  bool virtiofs = vm.shared_dir && config.share_fs == ShareFs::kVirtioFs;
  std::string machine = absl::StrFormat("%s,accel=%s", config.machine_type, AccelName(accel));
  if (config.machine_type == "microvm") machine += ",pcie=on";  // virtio-pci, as elsewhere
  if (virtiofs) machine += ",memory-backend=mem";               // vhost-user needs shared guest RAM
  if (!config.machine_accelerators.empty()) machine += "," + config.machine_accelerators;
  std::string cpu = config.cpu_model;
  if (cpu.empty() && accel == Accel::kKvm) cpu = "host";

  std::vector<std::string> argv = {config.qemu_path};
  Add(argv, "-name", QemuOptValue("kuasar-" + vm.sandbox_id));
  Add(argv, "-machine", machine);
  if (!cpu.empty()) Add(argv, "-cpu", cpu);
  Add(argv, "-smp", absl::StrFormat("%d", vm.vcpus));
  Add(argv, "-m", absl::StrFormat("%dM", vm.memory_mib));
  if (virtiofs) {
    Add(argv, "-object",
        absl::StrFormat("memory-backend-memfd,id=mem,size=%dM,share=on", vm.memory_mib));
  }
  // -display none rather than -nographic: with -nodefaults both mean no display, but
  // -nographic would also claim stdio for a console or monitor.
  argv.insert(argv.end(), {"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"});
  Add(argv, "-msg", "timestamp=on");
  Add(argv, "-kernel", vm.kernel_path);
  Add(argv, "-initrd", vm.initrd_path);
  Add(argv, "-append", cmdline);
  Add(argv, "-chardev", "file,id=console0,path=" + QemuOptValue(paths.console_log));
  Add(argv, "-serial", "chardev:console0");
  Add(argv, "-chardev",
      absl::StrFormat("socket,id=qmp0,path=%s,server=on,wait=off", QemuOptValue(paths.qmp_socket)));
  Add(argv, "-mon", "chardev=qmp0,mode=control");
  Add(argv, "-device", "virtio-serial-pci,id=vserial0");
  Add(argv, "-chardev",
      absl::StrFormat("socket,id=%s,path=%s,server=on,wait=off", kAgentChardevId,
                      QemuOptValue(paths.agent_socket)));
  Add(argv, "-device",
      absl::StrFormat("virtserialport,bus=vserial0.0,chardev=%s,name=%s,id=%s", kAgentChardevId,
                      kAgentPortName, kAgentPortId));
  if (vm.shared_dir) RETURN_IF_ERROR(AddShare(config, *vm.shared_dir, paths, argv));
  for (const NetDevice& net : vm.nets) RETURN_IF_ERROR(AddNet(net, accel, argv));
  for (const DiskDevice& disk : vm.disks) RETURN_IF_ERROR(AddDisk(disk, argv));
  if (config.machine_type == "q35") {
    for (int64_t i = 0; i < config.pcie_root_ports; ++i) {
      Add(argv, "-device",
          absl::StrFormat("pcie-root-port,id=hp%d,bus=pcie.0,chassis=%d", i, i + 1));
    }
  }
  Add(argv, "-pidfile", paths.pid_file);
  if (accel == Accel::kKvm && config.machine_type != "microvm") {
    Add(argv, "-global", "kvm-pit.lost_tick_policy=discard");
  }
  argv.insert(argv.end(), config.extra_args.begin(), config.extra_args.end());
  return argv;
}

}  // namespace kuasar::vmm
