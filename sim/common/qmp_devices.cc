// QmpMachine's device-side commands: device_add/del, netdev, blockdev, chardev, object,
// getfd/closefd, balloon, query-commands. Bookkeeping only: a device added here is
// remembered and reported, not emulated. Error texts are QEMU 7.2's.
#include <algorithm>
#include <cctype>

#include "absl/strings/str_format.h"
#include "sim/common/qmp_machine.h"

namespace kuasar::sim {
namespace {

constexpr const char* kDrivers[] = {"virtio-serial-pci",
                                    "virtio-serial-device",
                                    "virtio-serial",
                                    "virtserialport",
                                    "virtconsole",
                                    "virtio-net-pci",
                                    "virtio-net-device",
                                    "virtio-blk-pci",
                                    "virtio-blk-device",
                                    "virtio-9p-pci",
                                    "virtio-9p-device",
                                    "vhost-user-fs-pci",
                                    "vhost-user-fs-device",
                                    "virtio-rng-pci",
                                    "virtio-rng-device",
                                    "virtio-balloon-pci",
                                    "virtio-balloon-device",
                                    "pcie-root-port",
                                    "pci-bridge",
                                    "virtio-scsi-pci",
                                    "scsi-hd",
                                    "vfio-pci",
                                    "nvdimm",
                                    "pc-dimm",
                                    "virtio-mem-pci",
                                    "isa-serial",
                                    "pvpanic",
                                    "virtio-iommu-pci",
                                    "vhost-vsock-pci",
                                    "vhost-vsock-device",
                                    "vhost-user-blk-pci",
                                    "virtio-gpu-pci"};

constexpr const char* kCommands[] = {"qmp_capabilities",
                                     "query-status",
                                     "query-version",
                                     "query-name",
                                     "query-cpus-fast",
                                     "query-memory-size-summary",
                                     "cont",
                                     "stop",
                                     "system_powerdown",
                                     "system_reset",
                                     "quit",
                                     "device_add",
                                     "device_del",
                                     "netdev_add",
                                     "netdev_del",
                                     "blockdev-add",
                                     "blockdev-del",
                                     "chardev-add",
                                     "chardev-remove",
                                     "object-add",
                                     "object-del",
                                     "getfd",
                                     "closefd",
                                     "balloon",
                                     "query-balloon",
                                     "query-commands",
                                     "query-chardev",
                                     "human-monitor-command",
                                     "kuasar-faults"};

bool IsKnownDriver(const std::string& d) {
  return std::find(std::begin(kDrivers), std::end(kDrivers), d) != std::end(kDrivers);
}

std::optional<std::string> StringArg(const OJson& args, const char* key, QmpResult* err) {
  auto it = args.find(key);
  if (it == args.end()) {
    *err = QmpResult::Error("GenericError", absl::StrFormat("Parameter '%s' is missing", key));
    return std::nullopt;
  }
  if (!it->is_string()) {
    *err = QmpResult::Error(
        "GenericError", absl::StrFormat("Invalid parameter type for '%s', expected: string", key));
    return std::nullopt;
  }
  return it->get<std::string>();
}

}  // namespace

QmpResult QmpMachine::Devices(QmpSession& session, const std::string& cmd, const OJson& args,
                              bool* handled) {
  *handled = true;
  QmpResult err;
  const bool qemu = config_.dialect == QmpDialect::kQemu;
  if (cmd == "device_add") {
    auto driver = StringArg(args, "driver", &err);
    if (!driver) return err;
    if (!IsKnownDriver(*driver)) {
      return QmpResult::Error("GenericError",
                              absl::StrFormat("'%s' is not a valid device model name", *driver));
    }
    if (driver->rfind("vhost-vsock", 0) == 0) {
      return QmpResult::Error(
          "GenericError", "vhost-vsock: failed to open vhost device: No such file or directory");
    }
    std::string id;
    if (args.contains("id")) {
      if (!args["id"].is_string())
        return QmpResult::Error("GenericError",
                                "Invalid parameter type for 'id', expected: string");
      id = args["id"].get<std::string>();
      if (devices_.count(id)) {
        return QmpResult::Error("GenericError", absl::StrFormat("Duplicate device ID '%s'", id));
      }
    } else {
      id = absl::StrFormat("#hot%d", auto_id_++);
    }
    devices_[id] = args;
    return QmpResult::Ok();
  }
  if (cmd == "device_del") {
    if (auto e = CheckQmpArgs(args, {"id"}, {"id"})) return *e;
    auto id = StringArg(args, "id", &err);
    if (!id) return err;
    if (!devices_.erase(*id)) {
      return QmpResult::Error("DeviceNotFound", absl::StrFormat("Device '%s' not found", *id));
    }
    QmpResult r = QmpResult::Ok();
    if (qemu) {
      // The guest acknowledges the unplug after the command returns.
      r.events_after.push_back(
          {{"event", "DEVICE_DELETED"},
           {"data", {{"device", *id}, {"path", "/machine/peripheral/" + *id}}}});
    } else {
      r.events_before.push_back(
          {{"event", "DEVICE_DELETED"}, {"data", {{"device", *id}, {"path", *id}}}});
    }
    return r;
  }
  if (cmd == "netdev_add") {
    auto id = StringArg(args, "id", &err);
    if (!id) return err;
    if (qemu && !args.contains("type"))
      return QmpResult::Error("GenericError", "Parameter 'type' is missing");
    if (netdevs_.count(*id)) {
      return QmpResult::Error("GenericError", absl::StrFormat("Duplicate ID '%s' for netdev", *id));
    }
    for (const char* key : {"fd", "fds", "vhostfd", "vhostfds"}) {
      if (!args.contains(key) || !args[key].is_string()) continue;
      // Named fds (getfd) are consumed; numbers refer to the VMM's own fds.
      std::string names = args[key].get<std::string>();
      size_t start = 0;
      while (start <= names.size()) {
        size_t end = std::min(names.find(':', start), names.size());
        std::string name = names.substr(start, end - start);
        if (!name.empty() && !std::isdigit(static_cast<unsigned char>(name[0]))) {
          if (!named_fds_.erase(name)) {
            return QmpResult::Error(
                "GenericError",
                absl::StrFormat("File descriptor named '%s' has not been found", name));
          }
        }
        start = end + 1;
      }
    }
    netdevs_[*id] = args;
    return QmpResult::Ok();
  }
  if (cmd == "netdev_del" || cmd == "object-del" || cmd == "chardev-remove") {
    auto id = StringArg(args, "id", &err);
    if (!id) return err;
    auto& table = cmd == "netdev_del" ? netdevs_ : cmd == "object-del" ? objects_ : chardevs_;
    if (!table.erase(*id)) {
      if (cmd == "chardev-remove") {
        return QmpResult::Error("GenericError", absl::StrFormat("Chardev '%s' not found", *id));
      }
      return QmpResult::Error("DeviceNotFound", absl::StrFormat("Device '%s' not found", *id));
    }
    return QmpResult::Ok();
  }
  if (cmd == "blockdev-add") {
    if (!args.contains("node-name") || !args["node-name"].is_string()) {
      return QmpResult::Error("GenericError", "'node-name' must be specified for the root node");
    }
    std::string node = args["node-name"].get<std::string>();
    if (blockdevs_.count(node)) {
      return QmpResult::Error("GenericError",
                              absl::StrFormat("Duplicate nodes with node-name='%s'", node));
    }
    blockdevs_[node] = args;
    return QmpResult::Ok();
  }
  if (cmd == "blockdev-del") {
    auto node = StringArg(args, "node-name", &err);
    if (!node) return err;
    if (!blockdevs_.erase(*node)) {
      return QmpResult::Error("GenericError",
                              absl::StrFormat("Failed to find node with node-name='%s'", *node));
    }
    return QmpResult::Ok();
  }
  if (cmd == "chardev-add" || cmd == "object-add") {
    auto id = StringArg(args, "id", &err);
    if (!id) return err;
    auto& table = cmd == "chardev-add" ? chardevs_ : objects_;
    if (table.count(*id)) {
      return QmpResult::Error(
          "GenericError",
          absl::StrFormat("attempt to add duplicate property '%s' to object (type 'container')",
                          *id));
    }
    table[*id] = args;
    return cmd == "chardev-add" ? QmpResult::Ok(OJson::object()) : QmpResult::Ok();
  }
  if (cmd == "getfd") {
    auto name = StringArg(args, "fdname", &err);
    if (!name) return err;
    UniqueFd fd;
    if (!session.PopFd(&fd))
      return QmpResult::Error("GenericError", "No file descriptor supplied via SCM_RIGHTS");
    named_fds_[*name] = std::move(fd);
    return QmpResult::Ok();
  }
  if (cmd == "closefd") {
    auto name = StringArg(args, "fdname", &err);
    if (!name) return err;
    if (!named_fds_.erase(*name)) {
      return QmpResult::Error("GenericError",
                              absl::StrFormat("File descriptor named '%s' not found", *name));
    }
    return QmpResult::Ok();
  }
  if (cmd == "balloon") return QmpResult::Ok();
  if (cmd == "query-balloon") {
    return QmpResult::Ok({{"actual", static_cast<int64_t>(config_.memory_mib) << 20}});
  }
  if (cmd == "query-commands") {
    OJson list = OJson::array();
    for (const char* c : kCommands) list.push_back({{"name", c}});
    return QmpResult::Ok(list);
  }
  if (cmd == "query-chardev" && config_.dialect == QmpDialect::kQemu) {
    // "frontend-open": a virtserialport's guest has the port open (QEMU sets it with
    // VSERPORT_CHANGE), so a client that connected late learns the state.
    OJson list = OJson::array();
    for (const auto& [id, args] : chardevs_) {
      std::string path = args.value("path", "");
      list.push_back(
          {{"frontend-open", chardev_open_ ? chardev_open_(id) : false},
           {"filename", path.empty() ? "null" : "disconnected:unix:" + path + ",server=on"},
           {"label", id}});
    }
    return QmpResult::Ok(list);
  }
  if (cmd == "human-monitor-command") {
    if (!StringArg(args, "command-line", &err)) return err;
    return QmpResult::Ok("");
  }
  *handled = false;
  return QmpResult::Ok();
}

}  // namespace kuasar::sim
