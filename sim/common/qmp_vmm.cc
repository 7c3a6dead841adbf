#include "sim/common/qmp_vmm.h"

#include <unistd.h>

#include <cstdio>
#include <memory>

#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "sim/common/daemonize.h"
#include "sim/common/machine_layout.h"
#include "sim/common/qmp_machine.h"
#include "sim/common/qmp_server.h"
#include "sim/common/serial_channel.h"
#include "sim/common/vmm_context.h"

namespace kuasar::sim {

namespace {
void Fail(const std::string& msg) { std::fprintf(stderr, "%s\n", msg.c_str()); }
}  // namespace

int RunQmpVmm(const QmpVmmFlavor& f, const SimConfig& config,
              const std::vector<std::string>& args) {
  const bool qemu = f.dialect == QmpDialect::kQemu;
  auto cmd = TokenizeQemuCmdline(f.dialect, args, f.prog);
  if (!cmd.ok()) {
    Fail(std::string(cmd.status().message()));
    return 1;
  }
  if (cmd->Has("version") || cmd->Has("V")) {
    std::printf("%s\n", f.version_text.c_str());
    return 0;
  }
  if (cmd->Has("help") || cmd->Has("h")) {
    std::printf("%s (kuasar-fake-vmm): see docs/fake-vmm.md for the options simulated.\n",
                f.prog.c_str());
    return 0;
  }
  auto layout = BuildMachineLayout(f.dialect, *cmd, f.prog, config.agent, config.check_files);
  if (!layout.ok()) {
    Fail(std::string(layout.status().message()));
    return 1;
  }
  if (!layout->log_file.empty()) {
    if (absl::Status st = RedirectStderr(layout->log_file); !st.ok()) {
      Fail(absl::StrFormat("%s: %s", f.prog, st.message()));
      return 1;
    }
  }
  if (layout->daemonize) {
    if (absl::Status st = Daemonize(); !st.ok()) {
      Fail(absl::StrFormat("%s: %s", f.prog, st.message()));
      return 1;
    }
  }
  auto fail = [&](const std::string& msg) {
    Fail(msg);
    DaemonFailed(1);
    return 1;
  };
  std::string instance = !layout->name.empty()  ? layout->name
                         : !layout->qmp.empty() ? layout->qmp.front().path
                                                : "";
  VmmContext ctx(config, instance);
  ctx.ModelStartup();
  if (!layout->pidfile.empty()) {
    if (absl::Status st = WritePidFile(layout->pidfile); !st.ok()) {
      return fail(absl::StrFormat("%s: cannot create PID file: %s", f.prog, st.message()));
    }
  }
  std::vector<std::unique_ptr<SerialChannel>> channels;
  SerialChannel* agent_channel = nullptr;
  GuestDetacher detacher{ctx.guest};
  for (const SocketEndpoint& ep : layout->chardev_sockets) {
    auto ch = SerialChannel::Listen(ctx.runtime.io(), ep.path);
    if (!ch.ok())
      return fail(absl::StrFormat("%s: -chardev %s: %s", f.prog, ep.id, ch.status().message()));
    if (ep.path == layout->agent_socket) {
      ctx.guest.UseSerial(ch->get());
      agent_channel = ch->get();
    }
    channels.push_back(std::move(*ch));
  }
  if (layout->agent_socket.empty()) {
    spdlog::warn("op=start note=\"no virtserialport named {}: the agent gets no channel\"",
                 config.agent.serial_port_name);
  }
  QmpMachineConfig mc;
  mc.dialect = f.dialect;
  mc.name = layout->name;
  mc.vcpus = layout->vcpus;
  mc.memory_mib = layout->memory_mib;
  mc.start_paused = layout->start_paused;
  mc.no_shutdown = layout->no_shutdown;
  mc.version = f.version;
  mc.spec = GuestSpec{layout->memory_mib, layout->vcpus, layout->append, layout->shares};
  QmpMachine machine(ctx.runtime.io(), mc, ctx.guest, &ctx.injector,
                     [&](int code) { ctx.runtime.Exit(code); });
  for (const auto& [id, props] : layout->devices) machine.AddColdDevice(id, props);
  for (const SocketEndpoint& ep : layout->chardev_sockets) machine.AddColdChardev(ep.id, ep.path);
  machine.SetChardevOpenProbe([&, agent_path = layout->agent_socket](const std::string& id) {
    for (const SocketEndpoint& ep : layout->chardev_sockets) {
      if (ep.id == id && agent_channel != nullptr && ep.path == agent_path) {
        return agent_channel->guest_attached();
      }
    }
    return false;
  });
  std::vector<std::unique_ptr<QmpServer>> servers;
  machine.SetBroadcast([&](const OJson& ev) {
    for (auto& s : servers) s->Broadcast(ev);
  });
  QmpServer* waiting = nullptr;
  for (const SocketEndpoint& ep : layout->qmp) {
    auto s = QmpServer::Listen(
        ctx.runtime.io(), ep.path, f.dialect, f.greeting,
        [&](QmpSession& session, const std::string& c, const OJson& a, QmpSession::Done done) {
          machine.Execute(session, c, a, std::move(done));
        },
        f.replace_sockets);
    if (!s.ok())
      return fail(absl::StrFormat("%s: -qmp unix:%s: %s", f.prog, ep.path, s.status().message()));
    if (ep.wait && waiting == nullptr) waiting = s->get();
    servers.push_back(std::move(*s));
  }
  // QEMU (hw/char/virtio-console.c set_guest_connected) reports the guest opening and
  // closing a port that has an id; StratoVirt has no such event.
  struct ForgetPortEvents {
    SerialChannel* ch;
    ~ForgetPortEvents() {
      if (ch != nullptr) ch->OnGuestOpenChanged(nullptr);  // before `servers` goes
    }
  } forget_port_events{qemu && !layout->agent_port_id.empty() ? agent_channel : nullptr};
  if (forget_port_events.ch != nullptr) {
    forget_port_events.ch->OnGuestOpenChanged([&, id = layout->agent_port_id](bool open) {
      OJson ev = {{"event", "VSERPORT_CHANGE"}, {"data", {{"id", id}, {"open", open}}}};
      for (auto& s : servers) s->Broadcast(ev);
    });
  }
  ctx.guest.OnExit([&](const GuestExit& e) { machine.OnGuestExit(e); });
  ctx.runtime.OnTerminate([&](int sig) {
    if (qemu) std::fprintf(stderr, "%s: terminating on signal %d\n", f.prog.c_str(), sig);
    OJson ev = {{"event", "SHUTDOWN"}, {"data", {{"guest", false}, {"reason", "host-signal"}}}};
    for (auto& s : servers) s->Broadcast(ev);
    ctx.guest.PowerOff();
    ctx.runtime.Exit(0);
  });
  ctx.injector.Arm();
  if (waiting != nullptr) {
    // QEMU holds the VM until the first client of a wait=on server connects.
    if (qemu) {
      std::fprintf(stderr, "QEMU waiting for connection on: disconnected:unix:%s,server=on\n",
                   waiting->path().c_str());
    }
    waiting->OnFirstClient([&] {
      if (absl::Status st = machine.Start(); !st.ok()) {
        spdlog::error("op=start error=\"{}\"", st.message());
        ctx.runtime.Exit(1);
      }
    });
  } else if (absl::Status st = machine.Start(); !st.ok()) {
    return fail(absl::StrFormat("%s: %s", f.prog, st.message()));
  }
  DaemonReady(!layout->log_file.empty());
  int code = ctx.runtime.Run();
  if (!layout->pidfile.empty()) ::unlink(layout->pidfile.c_str());
  return code;
}

}  // namespace kuasar::sim
