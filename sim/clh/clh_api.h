// ClhApi: Cloud Hypervisor's REST API (/api/v1/...) over the simulated guest, with CH's
// state machine (no VM -> created -> running <-> paused; vm.shutdown back to created) and
// its error responses: a JSON array of the error chain's messages, 404 when the VM is not
// created (or has no config), 500 otherwise, 400 for bodies that do not deserialize
// (vmm/src/api/http/mod.rs). Dispatch is synchronous and socket-free, so tests and the
// fuzzer drive it directly. One io_context thread.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/status.h"
#include "sim/common/guest_control.h"
#include "sim/common/rest_types.h"

namespace kuasar::sim::clh {

inline constexpr std::string_view kClhVersion = "40.0";

class ClhApi {
 public:
  enum class State { kNone, kCreated, kRunning, kPaused };

  struct Hooks {
    // Before the guest powers on: bind the vsock device's socket, etc. An error fails boot.
    std::function<absl::Status(const nlohmann::json& config)> before_boot;
    // A vsock device hot-added to a running VM.
    std::function<absl::Status(const nlohmann::json& vsock)> add_vsock;
    // The VM was torn down (shutdown, delete): release its devices.
    std::function<void()> after_power_off;
    // vmm.shutdown answered: leave the process.
    std::function<void()> exit_vmm;
  };

  ClhApi(GuestControl& guest, bool check_files, Hooks hooks);

  RestReply Dispatch(const RestRequest& request);
  State state() const { return state_; }
  const nlohmann::json& config() const { return config_; }

  // The CH error reply shape (also for refusals by fault injection).
  static RestReply Error(int status, std::vector<std::string> chain);

 private:
  RestReply Create(const std::string& body);
  RestReply Boot();
  RestReply Info() const;
  RestReply Shutdown(const char* top);
  RestReply PauseResume(bool pause);
  RestReply AddDevice(const std::string& kind, const std::string& body);
  RestReply RemoveDevice(const std::string& body);
  RestReply Resize(const std::string& body);
  std::string StateName() const;
  bool running() const { return state_ == State::kRunning || state_ == State::kPaused; }

  GuestControl& guest_;
  bool check_files_;
  Hooks hooks_;
  State state_ = State::kNone;
  nlohmann::json config_;
  std::map<std::string, std::string> bdf_;  // device id -> PCI address
  int id_counter_ = 0;
  int next_slot_ = 1;
};

}  // namespace kuasar::sim::clh
