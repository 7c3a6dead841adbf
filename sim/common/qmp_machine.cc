#include "sim/common/qmp_machine.h"

#include <unistd.h>

#include <boost/asio/steady_timer.hpp>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/base/logging.h"
#include "sim/common/guest.h"

namespace kuasar::sim {

std::optional<QmpResult> CheckQmpArgs(const OJson& args, std::initializer_list<const char*> allowed,
                                      std::initializer_list<const char*> required) {
  for (const auto& [k, v] : args.items()) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || k == a;
    if (!ok)
      return QmpResult::Error("GenericError", absl::StrFormat("Parameter '%s' is unexpected", k));
  }
  for (const char* r : required) {
    if (!args.contains(r)) {
      return QmpResult::Error("GenericError", absl::StrFormat("Parameter '%s' is missing", r));
    }
  }
  return std::nullopt;
}

QmpMachine::QmpMachine(boost::asio::io_context& io, QmpMachineConfig config, GuestControl& guest,
                       FaultInjector* faults, std::function<void(int)> exit)
    : io_(io), config_(std::move(config)), guest_(guest), faults_(faults), exit_(std::move(exit)) {}

void QmpMachine::AddColdDevice(const std::string& id, OJson props) {
  devices_[id.empty() ? absl::StrFormat("#cold%d", auto_id_++) : id] = std::move(props);
}

void QmpMachine::AddColdChardev(const std::string& id, const std::string& path) {
  chardevs_[id] = OJson{{"id", id}, {"path", path}};
}

absl::Status QmpMachine::Start() {
  if (config_.start_paused || booted_once_) return absl::OkStatus();
  booted_once_ = true;
  state_ = RunState::kRunning;
  return guest_.PowerOn(config_.spec);
}

std::string QmpMachine::StatusName() const {
  switch (state_) {
    case RunState::kPrelaunch:
      return "prelaunch";
    case RunState::kRunning:
      return "running";
    case RunState::kPaused:
      return "paused";
    case RunState::kShutdown:
      return "shutdown";
  }
  return "running";
}

void QmpMachine::OnGuestExit(const GuestExit& exit) {
  OJson ev = {
      {"event", "SHUTDOWN"},
      {"data", {{"guest", true}, {"reason", exit.clean ? "guest-shutdown" : "guest-panic"}}}};
  if (broadcast_) broadcast_(ev);
  if (config_.no_shutdown) {
    state_ = RunState::kShutdown;
    if (broadcast_) broadcast_(OJson{{"event", "STOP"}});
    return;
  }
  exit_(0);
}

QmpResult QmpMachine::Unknown(const std::string& command) const {
  if (config_.dialect == QmpDialect::kStratoVirt) {
    // StratoVirt decodes commands with serde: an unknown name is a decode error.
    return QmpResult::Error(
        "GenericError", absl::StrFormat("unknown variant `%s`, expected one of `qmp_capabilities`, "
                                        "`quit`, `stop`, `cont`, `system_powerdown`, "
                                        "`system_reset`, `device_add`, `device_del`, "
                                        "`netdev_add`, `netdev_del`, `blockdev-add`, "
                                        "`blockdev-del`, `getfd`, `query-status`, "
                                        "`query-version`, `query-cpus`, `query-balloon`",
                                        command));
  }
  return QmpResult::Error("CommandNotFound",
                          absl::StrFormat("The command %s has not been found", command));
}

QmpResult QmpMachine::Lifecycle(const std::string& cmd, const OJson& args, bool* handled) {
  *handled = true;
  const bool qemu = config_.dialect == QmpDialect::kQemu;
  auto no_args = [&]() { return CheckQmpArgs(args, {}, {}); };
  if (cmd == "query-status") {
    if (auto e = no_args()) return *e;
    bool running = state_ == RunState::kRunning;
    if (qemu)
      return QmpResult::Ok({{"status", StatusName()}, {"singlestep", false}, {"running", running}});
    return QmpResult::Ok({{"running", running}, {"singlestep", false}, {"status", StatusName()}});
  }
  if (cmd == "query-version") return QmpResult::Ok(config_.version);
  if (cmd == "query-name" && qemu) {
    return QmpResult::Ok(config_.name.empty() ? OJson::object() : OJson{{"name", config_.name}});
  }
  if (cmd == "query-cpus-fast" || (cmd == "query-cpus" && !qemu)) {
    OJson cpus = OJson::array();
    for (int i = 0; i < config_.vcpus; ++i) {
      // No vCPU threads here: every vCPU reports the VMM process.
      OJson props = {{"core-id", i}, {"thread-id", 0}, {"socket-id", 0}};
      std::string qom = absl::StrFormat("/machine/unattached/device[%d]", i);
      if (qemu) {
        cpus.push_back({{"thread-id", ::getpid()},
                        {"props", props},
                        {"qom-path", qom},
                        {"cpu-index", i},
                        {"target", "x86_64"}});
      } else {
        cpus.push_back({{"CPU", i},
                        {"current", i == 0},
                        {"halted", false},
                        {"qom_path", qom},
                        {"thread_id", ::getpid()},
                        {"props", props},
                        {"target", "x86_64"}});
      }
    }
    return QmpResult::Ok(cpus);
  }
  if (cmd == "query-memory-size-summary" && qemu) {
    return QmpResult::Ok(
        {{"base-memory", static_cast<int64_t>(config_.memory_mib) << 20}, {"plugged-memory", 0}});
  }
  if (cmd == "cont") {
    if (auto e = no_args()) return *e;
    if (state_ == RunState::kShutdown) {
      return QmpResult::Error("GenericError", "Resetting the Virtual Machine is required");
    }
    if (state_ == RunState::kRunning) return QmpResult::Ok();
    QmpResult r = QmpResult::Ok();
    if (!booted_once_) {
      booted_once_ = true;
      if (absl::Status st = guest_.PowerOn(config_.spec); !st.ok()) {
        return QmpResult::Error("GenericError", std::string(st.message()));
      }
    }
    guest_.SetPaused(false);
    state_ = RunState::kRunning;
    r.events_before.push_back({{"event", "RESUME"}});
    return r;
  }
  if (cmd == "stop") {
    if (auto e = no_args()) return *e;
    QmpResult r = QmpResult::Ok();
    if (state_ == RunState::kRunning) {
      guest_.SetPaused(true);
      r.events_before.push_back({{"event", "STOP"}});
    }
    if (state_ != RunState::kShutdown) state_ = booted_once_ ? RunState::kPaused : state_;
    return r;
  }
  if (cmd == "system_powerdown") {
    if (auto e = no_args()) return *e;
    QmpResult r = QmpResult::Ok();
    r.events_before.push_back({{"event", "POWERDOWN"}});
    guest_.PowerButton();
    return r;
  }
  if (cmd == "system_reset") {
    if (auto e = no_args()) return *e;
    QmpResult r = QmpResult::Ok();
    r.events_after.push_back(
        {{"event", "RESET"}, {"data", {{"guest", false}, {"reason", "host-qmp-system-reset"}}}});
    if (booted_once_) {
      if (absl::Status st = guest_.Reset(); !st.ok()) {
        return QmpResult::Error("GenericError", std::string(st.message()));
      }
      if (state_ == RunState::kShutdown) state_ = RunState::kRunning;
    }
    return r;
  }
  if (cmd == "quit") {
    if (auto e = no_args()) return *e;
    QmpResult r = QmpResult::Ok();
    OJson ev = {{"event", "SHUTDOWN"}, {"data", {{"guest", false}, {"reason", "host-qmp-quit"}}}};
    (qemu ? r.events_before : r.events_after).push_back(ev);
    r.after_sent = [this] {
      guest_.PowerOff();
      exit_(0);
    };
    return r;
  }
  *handled = false;
  return QmpResult::Ok();
}

QmpResult QmpMachine::ExecuteNow(QmpSession& session, const std::string& cmd, const OJson& args) {
  bool handled = false;
  QmpResult r = Lifecycle(cmd, args, &handled);
  if (handled) return r;
  r = Devices(session, cmd, args, &handled);
  if (handled) return r;
  if (cmd == "kuasar-faults") {
    if (faults_ == nullptr) return QmpResult::Ok();
    if (!args.empty()) {
      nlohmann::json doc = nlohmann::json::parse(args.dump());
      if (absl::Status st = faults_->Apply(doc); !st.ok()) {
        return QmpResult::Error("GenericError", std::string(st.message()));
      }
    }
    return QmpResult::Ok(OJson::parse(faults_->Describe().dump()));
  }
  return Unknown(cmd);
}

void QmpMachine::Execute(QmpSession& session, const std::string& cmd, const OJson& args,
                         QmpSession::Done done) {
  if (faults_ == nullptr || cmd == "kuasar-faults") {
    done(ExecuteNow(session, cmd, args));
    return;
  }
  int64_t delay = faults_->TakeDelayMs("", cmd);
  const FaultRule* refuse = faults_->TakeRefusal("", cmd);
  std::optional<QmpResult> refusal;
  if (refuse != nullptr) {
    spdlog::info("op=fault refuse command={}", cmd);
    refusal = QmpResult::Error(
        "GenericError", refuse->message.empty()
                            ? absl::StrFormat("kuasar-fake-vmm: %s refused by fault injection", cmd)
                            : refuse->message);
  }
  if (delay <= 0) {
    done(refusal ? *refusal : ExecuteNow(session, cmd, args));
    return;
  }
  spdlog::info("op=fault slow command={} ms={}", cmd, delay);
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, std::chrono::milliseconds(delay));
  // If the client leaves during the wait, the command is not run at all.
  timer->async_wait([this, timer, &session, life = session.life(), cmd, args, refusal,
                     done = std::move(done)](auto ec) {
    if (ec || !*life) return;
    done(refusal ? *refusal : ExecuteNow(session, cmd, args));
  });
}

}  // namespace kuasar::sim
