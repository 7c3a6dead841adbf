// QemuHypervisor's device hotplug over QMP: netdev_add/blockdev-add, then device_add on a
// free bus; removal waits for the guest to release the device (DEVICE_DELETED).
#include <unistd.h>

#include <condition_variable>
#include <set>

#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/qemu/qemu_hypervisor.h"
#include "runtime/sandboxers/vmm/qemu/qemu_shared_state.h"

namespace kuasar::vmm {

using nlohmann::json;

absl::StatusOr<std::string> QemuHypervisor::ClaimHotplugBus(std::string_view id) {
  if (!MachineCanHotplug(config_)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("machine %s cannot hotplug devices; use q35 or pc", config_.machine_type));
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (hotplugged_.count(std::string(id)) > 0) {
    return absl::AlreadyExistsError(absl::StrFormat("device %s is already plugged", id));
  }
  std::set<std::string> used;
  for (const auto& [dev, bus] : hotplugged_) used.insert(bus);
  for (const std::string& bus : HotplugBuses(config_)) {
    if (bus.empty() || used.count(bus) == 0) return bus;  // "" (pc's pci.0) never fills up
  }
  return absl::ResourceExhaustedError(
      absl::StrFormat("all %d pcie-root-ports are in use; raise [hypervisor] pcie_root_ports",
                      config_.pcie_root_ports));
}

absl::Status QemuHypervisor::AddNet(const NetDevice& net) {
  RETURN_IF_ERROR(CheckNetDevice(net));
  ASSIGN_OR_RETURN(std::string bus, ClaimHotplugBus(net.id));
  std::string netdev = "netdev-" + net.id;
  json args = {
      {"type", "tap"}, {"id", netdev}, {"ifname", net.tap}, {"script", "no"}, {"downscript", "no"}};
  if (accel_ == Accel::kKvm && ::access("/dev/vhost-net", R_OK | W_OK) == 0) args["vhost"] = true;
  RETURN_IF_ERROR(Qmp("netdev_add", args).status());
  json device = {{"driver", "virtio-net-pci"}, {"id", net.id}, {"netdev", netdev}};
  if (!net.mac.empty()) device["mac"] = net.mac;
  if (!bus.empty()) device["bus"] = bus;
  if (auto added = Qmp("device_add", device); !added.ok()) {
    (void)Qmp("netdev_del", {{"id", netdev}});
    return added.status();
  }
  std::lock_guard<std::mutex> lock(mu_);
  hotplugged_[net.id] = bus;
  spdlog::info("sandbox={} op=hotplug net={} tap={} bus={}", vm_.sandbox_id, net.id, net.tap, bus);
  return absl::OkStatus();
}

absl::Status QemuHypervisor::RemoveNet(std::string_view id) {
  RETURN_IF_ERROR(Unplug(id, absl::Seconds(20)));
  RETURN_IF_ERROR(Qmp("netdev_del", {{"id", absl::StrFormat("netdev-%s", id)}}).status());
  std::lock_guard<std::mutex> lock(mu_);
  hotplugged_.erase(std::string(id));
  return absl::OkStatus();
}

absl::Status QemuHypervisor::AddDisk(const DiskDevice& disk) {
  RETURN_IF_ERROR(CheckDiskDevice(disk));
  if (::access(disk.path.c_str(), R_OK) != 0) return ErrnoStatus(errno, "access", disk.path);
  ASSIGN_OR_RETURN(std::string bus, ClaimHotplugBus(disk.id));
  RETURN_IF_ERROR(Qmp("blockdev-add", BlockdevNode(disk)).status());
  std::string node = "drive-" + disk.id;
  json device = {{"driver", "virtio-blk-pci"}, {"id", disk.id}, {"drive", node}};
  if (!bus.empty()) device["bus"] = bus;
  if (auto added = Qmp("device_add", device); !added.ok()) {
    (void)Qmp("blockdev-del", {{"node-name", node}});
    return added.status();
  }
  std::lock_guard<std::mutex> lock(mu_);
  hotplugged_[disk.id] = bus;
  spdlog::info("sandbox={} op=hotplug disk={} path={} bus={}", vm_.sandbox_id, disk.id, disk.path,
               bus);
  return absl::OkStatus();
}

absl::Status QemuHypervisor::RemoveDisk(std::string_view id) {
  RETURN_IF_ERROR(Unplug(id, absl::Seconds(20)));
  RETURN_IF_ERROR(Qmp("blockdev-del", {{"node-name", absl::StrFormat("drive-%s", id)}}).status());
  std::lock_guard<std::mutex> lock(mu_);
  hotplugged_.erase(std::string(id));
  return absl::OkStatus();
}

// PCI unplug needs the guest's cooperation (it ejects the device); QEMU reports it done
// with DEVICE_DELETED.
absl::Status QemuHypervisor::Unplug(std::string_view id, absl::Duration timeout) {
  RETURN_IF_ERROR(CheckDeviceId(id));
  std::string dev(id);
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->deleted.erase(dev);
  }
  RETURN_IF_ERROR(Qmp("device_del", {{"id", dev}}).status());
  std::unique_lock<std::mutex> lock(shared_->mu);
  if (!shared_->cv.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                            [&] { return shared_->deleted.count(dev) > 0 || shared_->exited; })) {
    return absl::DeadlineExceededError(
        absl::StrFormat("sandbox %s: the guest did not release device %s within %s", vm_.sandbox_id,
                        dev, absl::FormatDuration(timeout)));
  }
  if (shared_->deleted.count(dev) == 0) return absl::FailedPreconditionError("the VM exited");
  return absl::OkStatus();
}

}  // namespace kuasar::vmm
