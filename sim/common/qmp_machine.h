// QmpMachine: the QMP command set QEMU and StratoVirt share, over the simulated guest:
// run state (query-status, cont, stop, system_powerdown, system_reset, quit), versions and
// vCPUs, device/netdev/blockdev/chardev bookkeeping with QEMU's errors and events
// (device_del -> DEVICE_DELETED), getfd/closefd, and the simulator's kuasar-faults. Every
// command passes the fault injector (refuse: GenericError; slow: delayed reply).
// One io_context thread.
#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "sim/common/fault_injector.h"
#include "sim/common/guest_control.h"
#include "sim/common/qmp_session.h"

namespace kuasar::sim {

struct GuestExit;

struct QmpMachineConfig {
  QmpDialect dialect = QmpDialect::kQemu;
  std::string name;  // -name
  int vcpus = 1;
  double memory_mib = 128;
  bool start_paused = false;  // -S: prelaunch until cont
  bool no_shutdown = false;   // -no-shutdown: a guest poweroff leaves the VMM up
  OJson version;              // the "return" of query-version
  GuestSpec spec;
};

class QmpMachine {
 public:
  enum class RunState { kPrelaunch, kRunning, kPaused, kShutdown };

  QmpMachine(boost::asio::io_context& io, QmpMachineConfig config, GuestControl& guest,
             FaultInjector* faults, std::function<void(int code)> exit);
  void SetBroadcast(std::function<void(const OJson&)> fn) { broadcast_ = std::move(fn); }

  // A device from the command line (so device_del finds it and device_add sees its id).
  void AddColdDevice(const std::string& id, OJson props);
  // A socket chardev from the command line (query-chardev lists it), and how to tell
  // whether its frontend (a virtserialport's guest) has it open.
  void AddColdChardev(const std::string& id, const std::string& path);
  void SetChardevOpenProbe(std::function<bool(const std::string& id)> fn) {
    chardev_open_ = std::move(fn);
  }
  // Powers the guest on unless -S; a wait=on QMP server calls it on its first client.
  absl::Status Start();
  // The agent exited: SHUTDOWN (guest-shutdown or guest-panic), then exit unless
  // -no-shutdown.
  void OnGuestExit(const GuestExit& exit);

  // QmpSession::Dispatch.
  void Execute(QmpSession& session, const std::string& command, const OJson& args,
               QmpSession::Done done);
  // The same without faults or delays (fuzzing, unit tests).
  QmpResult ExecuteNow(QmpSession& session, const std::string& command, const OJson& args);
  RunState state() const { return state_; }

 private:
  QmpResult Lifecycle(const std::string& command, const OJson& args, bool* handled);
  QmpResult Devices(QmpSession& session, const std::string& command, const OJson& args,
                    bool* handled);
  QmpResult Unknown(const std::string& command) const;
  std::string StatusName() const;

  boost::asio::io_context& io_;
  QmpMachineConfig config_;
  GuestControl& guest_;
  FaultInjector* faults_;
  std::function<void(int)> exit_;
  std::function<void(const OJson&)> broadcast_;
  std::function<bool(const std::string&)> chardev_open_;
  RunState state_ = RunState::kPrelaunch;
  bool booted_once_ = false;
  std::map<std::string, OJson> devices_, netdevs_, blockdevs_, chardevs_, objects_;
  std::map<std::string, UniqueFd> named_fds_;
  int auto_id_ = 0;
};

// Checks `args` has only `allowed` keys and the `required` ones; QEMU's error texts.
std::optional<QmpResult> CheckQmpArgs(const OJson& args, std::initializer_list<const char*> allowed,
                                      std::initializer_list<const char*> required);

}  // namespace kuasar::sim
