// Hypervisor: what every VMM driver (QEMU, Cloud Hypervisor, Firecracker, StratoVirt,
// libvirt) implements for the vmm sandboxer: one instance per sandbox's VM, made by the
// driver's HypervisorFactory. Threading: every method but Kill, Identity and
// agent_channel blocks, so call it from a worker thread, never from the io_context the
// factory was given; lifecycle calls on one instance are serialized by the caller (the
// sandbox's mutex). Callbacks run on that io_context and must not block.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/base/process_identity.h"

namespace kuasar::vmm {

// How the sandboxer reaches the guest agent (vmm-task).
struct AgentChannel {
  enum class Kind {
    kSerialSocket,  // virtio-serial port on a host unix socket: one byte stream, one
                    // client at a time; the sandboxer multiplexes containerd's calls on it
    kHybridVsock,   // unix socket + "CONNECT <port>\n": containerd dials ttrpc+hvsock
    kVsock,         // AF_VSOCK cid + port (vhost-vsock)
    kUnix,          // a unix socket the VMM forwards (e.g. the fake VMM)
  };
  Kind kind = Kind::kSerialSocket;
  std::string path;   // kSerialSocket, kHybridVsock, kUnix
  uint32_t cid = 0;   // kVsock
  uint32_t port = 0;  // kHybridVsock, kVsock
  // The address containerd can dial itself ("hvsock://PATH:PORT", "vsock://CID:PORT",
  // "unix://PATH"); empty for kSerialSocket, which only the sandboxer can use.
  std::string TaskAddress() const;
};

struct SharedDir {
  std::string host_path;
  std::string tag = "kuasar";  // the guest mounts it by this tag
  bool read_only = false;
};

struct NetDevice {
  std::string id;   // unique in the VM: [A-Za-z][A-Za-z0-9_.-]{0,31}
  std::string tap;  // an existing tap in the VM's network namespace
  std::string mac;  // "aa:bb:cc:dd:ee:ff"; empty lets the VMM choose
};

struct DiskDevice {
  std::string id;              // as NetDevice::id
  std::string path;            // a file or a block device
  std::string format = "raw";  // "raw" or "qcow2"
  bool read_only = false;
};

// Everything about one VM; the factory's DefaultVmConfig() fills the driver's defaults
// (kernel, vcpus, memory) from its TOML, the sandboxer fills the rest.
struct VmConfig {
  std::string sandbox_id;
  std::string state_dir;   // per-VM files (console.log, vmm.log, pid file); must exist
  std::string socket_dir;  // short dir for unix sockets (base/socket_path.h SocketDirFor)
  uint32_t vcpus = 1;
  uint64_t memory_mib = 512;
  std::string kernel_path;
  std::string initrd_path;
  std::string kernel_params;  // appended to the driver's defaults; a repeated key wins
  std::optional<SharedDir> shared_dir;
  std::vector<NetDevice> nets;
  std::vector<DiskDevice> disks;
  std::string netns_path;  // run the VMM in this network namespace (its taps live there)
  bool debug = false;      // verbose guest console and agent log
};

struct VmExit {
  int wait_status = -1;    // as waitpid gives it; -1 when unknown (a VMM reattached to)
  std::string reason;      // "guest-shutdown", "guest-reset", "guest-panic", "host-qmp-quit",
                           // "killed by signal 9", "exited with status 1", ...
  bool requested = false;  // caused by Stop or Kill
  absl::Time at;
  // 0 for a clean exit, 128+signal, the exit code, or 255 when unknown.
  uint32_t ExitStatus() const;
};

class Hypervisor {
 public:
  using ExitCallback = std::function<void(const VmExit&)>;

  // Detaches: a VM still running keeps running and Recover can reattach to it (a
  // sandboxer restart must not take the pods down). Stop or Kill end it.
  virtual ~Hypervisor() = default;

  // Checks the config and prepares files; starts nothing. Call once, before Launch.
  virtual absl::Status Prepare(const VmConfig& config) = 0;
  // Starts the VMM; returns once it runs and its control channel answers (the guest is
  // then booting). On error nothing is left running.
  virtual absl::Status Launch() = 0;
  // Waits until the guest agent opened its end of the channel (or the VMM reports the
  // guest up), then returns how to reach it. The sandboxer still dials with retries.
  virtual absl::StatusOr<AgentChannel> WaitReady(absl::Time deadline) = 0;
  virtual AgentChannel agent_channel() const = 0;

  // Graceful: asks the guest to power off (ACPI), waits up to `timeout`, then tells the
  // VMM to quit, then SIGKILL. OK once nothing of the VM runs; tolerates a dead VM.
  virtual absl::Status Stop(absl::Duration timeout) = 0;
  // SIGKILL now and wait for the exit. Any thread.
  virtual absl::Status Kill() = 0;

  // After a sandboxer restart: reattach to the VMM PersistedState() described (pid and
  // start time checked, control socket reconnected). NOT_FOUND if it is gone.
  virtual absl::Status Recover(const nlohmann::json& state) = 0;
  // What Recover needs, to store in the sandbox record after Launch and after each
  // hotplug call.
  virtual nlohmann::json PersistedState() const = 0;
  // The VMM process; nullopt before Launch/Recover.
  virtual std::optional<ProcessIdentity> Identity() const = 0;

  // Hotplug; drivers or machine types without it return UNIMPLEMENTED or
  // FAILED_PRECONDITION.
  virtual absl::Status AddDisk(const DiskDevice& disk);
  virtual absl::Status RemoveDisk(std::string_view id);
  virtual absl::Status AddNet(const NetDevice& net);
  virtual absl::Status RemoveNet(std::string_view id);

  // Set before Launch or Recover. Runs once, on the io thread, when the VMM exits for any
  // reason (VmExit::requested tells Stop/Kill apart from a crash); possibly just after
  // Stop or Kill has returned.
  virtual void SetExitCallback(ExitCallback callback) = 0;
  // Extra keys for the sandbox's verbose status (console log path, accel, machine...).
  virtual void Describe(std::map<std::string, std::string>* info) const = 0;
};

// One per driver per daemon, configured from the [hypervisor] TOML section.
class HypervisorFactory {
 public:
  virtual ~HypervisorFactory() = default;
  virtual std::string_view Kind() const = 0;  // "qemu", "cloud-hypervisor", ...
  virtual VmConfig DefaultVmConfig() const = 0;
  virtual std::unique_ptr<Hypervisor> New() = 0;
};

}  // namespace kuasar::vmm
