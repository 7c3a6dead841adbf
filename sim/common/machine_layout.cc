#include "sim/common/machine_layout.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace kuasar::sim {
namespace {

struct Ctx {
  QmpDialect dialect;
  const std::string& prog;
  absl::Status Err(std::string_view opt, std::string_view arg, std::string_view msg) const {
    if (dialect == QmpDialect::kStratoVirt) {
      return absl::InvalidArgumentError(
          absl::StrFormat("Invalid parameter of -%s %s: %s", opt, arg, msg));
    }
    return absl::InvalidArgumentError(absl::StrFormat("%s: -%s %s: %s", prog, opt, arg, msg));
  }
};

absl::StatusOr<SocketEndpoint> ParseUnixServer(const Ctx& c, std::string_view opt,
                                               const std::string& arg) {
  if (arg.rfind("unix:", 0) != 0) {
    return c.Err(opt, arg, "only unix: sockets are simulated");
  }
  OptionList o = ParseQemuOptions(std::string_view(arg).substr(5), true);
  SocketEndpoint ep;
  ep.path = o.implied;
  bool server = false, wait = true;
  for (const auto& [k, v] : o.items) {
    if (k == "server") {
      server = ParseToggle(v).value_or(false);
    } else if (k == "nowait") {
      wait = false;
    } else if (k == "wait") {
      wait = ParseToggle(v).value_or(true);
    } else {
      return c.Err(opt, arg, absl::StrFormat("Invalid parameter '%s'", k));
    }
  }
  if (!server) return c.Err(opt, arg, "a client (server=off) socket is not simulated");
  ep.wait = wait;
  return ep;
}

}  // namespace

absl::StatusOr<MachineLayout> BuildMachineLayout(QmpDialect dialect, const QemuCmdline& cmd,
                                                 const std::string& prog, const AgentConfig& agent,
                                                 bool check_files) {
  Ctx c{dialect, prog};
  const bool qemu = dialect == QmpDialect::kQemu;
  MachineLayout l;
  std::map<std::string, SocketEndpoint> sockets;  // chardev id -> socket
  std::set<std::string> chardevs, netdevs;
  std::map<std::string, std::string> fsdevs;  // id -> path
  std::set<std::string> monitor_chardevs;
  bool serial_bus = false;
  std::string first_port_socket;
  for (const CmdlineOption& o : cmd.options) {
    const std::string& a = o.arg;
    if (o.name == "name") {
      OptionList n = ParseQemuOptions(a, true);
      l.name = n.implied.empty() ? n.Get("guest").value_or("") : n.implied;
    } else if (o.name == "machine" || o.name == "M") {
      OptionList m = ParseQemuOptions(a, true);
      l.machine = m.implied.empty() ? m.Get("type").value_or("") : m.implied;
    } else if (o.name == "m") {
      OptionList m = ParseQemuOptions(a, true);
      std::string size = m.implied.empty() ? m.Get("size").value_or("") : m.implied;
      auto bytes = ParseSize(size, 1 << 20);
      if (!bytes.ok() || *bytes == 0) return c.Err("m", a, "invalid RAM size");
      l.memory_mib = static_cast<double>(*bytes) / (1 << 20);
    } else if (o.name == "smp") {
      OptionList s = ParseQemuOptions(a, true);
      std::string cpus = s.implied.empty() ? s.Get("cpus").value_or("1") : s.implied;
      if (!absl::SimpleAtoi(cpus, &l.vcpus) || l.vcpus < 1) {
        return absl::InvalidArgumentError(
            qemu ? absl::StrFormat("%s: Parameter 'smp.cpus' expects integer", prog)
                 : absl::StrFormat("Invalid parameter of -smp %s: cpus", a));
      }
    } else if (o.name == "kernel") {
      l.kernel = a;
    } else if (o.name == "initrd") {
      l.initrd = a;
    } else if (o.name == "append") {
      l.append = a;
    } else if (o.name == "S" || o.name == "freeze_cpu") {
      l.start_paused = true;
    } else if (o.name == "no-shutdown") {
      l.no_shutdown = true;
    } else if (o.name == "daemonize") {
      l.daemonize = true;
    } else if (o.name == "pidfile") {
      l.pidfile = a;
    } else if (o.name == "D") {
      l.log_file = a;
    } else if (o.name == "qmp" || o.name == "api-channel") {
      auto ep = ParseUnixServer(c, o.name, a);
      if (!ep.ok()) return ep.status();
      l.qmp.push_back(*ep);
    } else if (o.name == "chardev") {
      OptionList ch = ParseQemuOptions(a, true);
      auto id = ch.Get("id");
      if (!id) return c.Err("chardev", a, "Parameter 'id' is missing");
      if (!chardevs.insert(*id).second) {
        return c.Err("chardev", a, absl::StrFormat("Duplicate ID '%s' for chardev", *id));
      }
      if (ch.implied == "socket") {
        std::string unix_arg = absl::StrFormat("unix:%s", ch.Get("path").value_or(""));
        for (const auto& [k, v] : ch.items) {
          if (k == "server" || k == "wait" || k == "nowait") {
            unix_arg += v.empty() ? "," + k : absl::StrFormat(",%s=%s", k, v);
          }
        }
        auto ep = ParseUnixServer(c, "chardev", unix_arg);
        if (!ep.ok()) return c.Err("chardev", a, "only unix server sockets are simulated");
        ep->id = *id;
        sockets[*id] = *ep;
      }
    } else if (o.name == "mon") {
      OptionList m = ParseQemuOptions(a, false);
      auto ch = m.Get("chardev");
      if (!ch || !chardevs.count(*ch)) return c.Err("mon", a, "chardev not found");
      if (m.Get("mode").value_or("readline") == "control" && sockets.count(*ch)) {
        l.qmp.push_back(sockets[*ch]);
        monitor_chardevs.insert(*ch);
      }
    } else if (o.name == "fsdev") {
      OptionList f = ParseQemuOptions(a, true);
      auto id = f.Get("id");
      if (!id) return c.Err("fsdev", a, "Parameter 'id' is missing");
      fsdevs[*id] = f.Get("path").value_or("");
    } else if (o.name == "virtfs") {
      OptionList f = ParseQemuOptions(a, true);
      l.shares.push_back(
          absl::StrFormat("%s=%s", f.Get("mount_tag").value_or(""), f.Get("path").value_or("")));
    } else if (o.name == "netdev") {
      OptionList n = ParseQemuOptions(a, true);
      if (auto id = n.Get("id")) netdevs.insert(*id);
    } else if (o.name == "device") {
      OptionList d = ParseQemuOptions(a, true);
      const std::string& drv = d.implied;
      if (drv.rfind("vhost-vsock", 0) == 0) {
        return c.Err("device", a,
                     "vhost-vsock: failed to open vhost device: No such file or directory");
      }
      if (drv.rfind("virtio-serial", 0) == 0) serial_bus = true;
      if (drv == "virtserialport" || drv == "virtconsole") {
        if (!serial_bus) {
          return c.Err("device", a,
                       absl::StrFormat("No 'virtio-serial-bus' bus found for device '%s'", drv));
        }
        std::string ch = d.Get("chardev").value_or("");
        if (!chardevs.count(ch)) {
          return c.Err("device", a,
                       absl::StrFormat("Property '%s.chardev' can't find value '%s'", drv, ch));
        }
        if (sockets.count(ch) && drv == "virtserialport") {
          if (d.Get("name").value_or("") == agent.serial_port_name) {
            l.agent_socket = sockets[ch].path;
            l.agent_port_id = d.Get("id").value_or("");
          }
          if (first_port_socket.empty()) first_port_socket = sockets[ch].path;
        }
      }
      if (drv.rfind("virtio-9p", 0) == 0) {
        std::string fs = d.Get("fsdev").value_or("");
        if (!fsdevs.count(fs)) {
          return c.Err("device", a,
                       absl::StrFormat("Property '%s.fsdev' can't find value '%s'", drv, fs));
        }
        l.shares.push_back(absl::StrFormat("%s=%s", d.Get("mount_tag").value_or(""), fsdevs[fs]));
      }
      if (drv.rfind("virtio-net", 0) == 0 && d.Has("netdev") && !netdevs.count(*d.Get("netdev"))) {
        return c.Err(
            "device", a,
            absl::StrFormat("Property '%s.netdev' can't find value '%s'", drv, *d.Get("netdev")));
      }
      OJson props = {{"driver", drv}};
      for (const auto& [k, v] : d.items) props[k] = v;
      l.devices.emplace_back(d.Get("id").value_or(""), props);
    }
  }
  if (l.agent_socket.empty() && !qemu) l.agent_socket = first_port_socket;
  for (const auto& [id, ep] : sockets) {
    if (!monitor_chardevs.count(id)) l.chardev_sockets.push_back(ep);
  }
  if (check_files) {
    for (const auto& [what, path] : {std::pair<const char*, std::string>{"kernel", l.kernel},
                                     {"initial ram disk", l.initrd}}) {
      if (path.empty() || ::access(path.c_str(), R_OK) == 0) continue;
      if (qemu) {
        return absl::InvalidArgumentError(
            absl::StrFormat("qemu: could not load %s '%s': %s", what, path, std::strerror(errno)));
      }
      return absl::InvalidArgumentError(
          absl::StrFormat("Failed to open %s file %s: %s", what, path, std::strerror(errno)));
    }
  }
  return l;
}

}  // namespace kuasar::sim
