// GuestControl: what a VMM's API front end asks of the simulated guest (power it on, press
// its power button, pull its plug, reboot it, pause it). Guest implements it for real;
// NoopGuest answers without doing anything (fuzzers, API unit tests). Called on the VMM's
// io thread only.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace kuasar::sim {

// What the guest is booted with, as the VMM's configuration says.
struct GuestSpec {
  double memory_mib = 0;
  int vcpus = 1;
  std::string kernel_cmdline;       // -> KUASAR_GUEST_CMDLINE for the agent
  std::vector<std::string> shares;  // "tag=path" (9p) or "tag=virtiofs:socket"
};

class GuestControl {
 public:
  virtual ~GuestControl() = default;
  // Power on: after the modelled boot latency the agent starts. Errors only when the VM
  // cannot be powered on at all (e.g. its memory cannot be mapped).
  virtual absl::Status PowerOn(const GuestSpec& spec) = 0;
  // ACPI power button / Ctrl-Alt-Del: the agent gets SIGTERM and may shut down.
  virtual void PowerButton() = 0;
  // Pull the plug: the agent is killed; no guest-exit notification follows.
  virtual void PowerOff() = 0;
  // Reboot: PowerOff then PowerOn with the same spec.
  virtual absl::Status Reset() = 0;
  virtual void SetPaused(bool paused) = 0;
  virtual bool powered() const = 0;
  virtual bool paused() const = 0;
  virtual bool agent_running() const = 0;
};

class NoopGuest : public GuestControl {
 public:
  absl::Status PowerOn(const GuestSpec&) override {
    powered_ = true;
    return absl::OkStatus();
  }
  void PowerButton() override {}
  void PowerOff() override { powered_ = paused_ = false; }
  absl::Status Reset() override { return absl::OkStatus(); }
  void SetPaused(bool paused) override { paused_ = paused; }
  bool powered() const override { return powered_; }
  bool paused() const override { return paused_; }
  bool agent_running() const override { return false; }

 private:
  bool powered_ = false, paused_ = false;
};

}  // namespace kuasar::sim
