// FcApi: Firecracker's REST API (src/firecracker/swagger/firecracker.yaml) over the
// simulated guest: pre-boot configuration (boot-source, drives, machine-config,
// network-interfaces, vsock, logger, metrics, ...), PUT /actions (InstanceStart,
// SendCtrlAltDel, FlushMetrics), PATCH /vm (Paused/Resumed), GET / and the config reads.
// Errors are 400 {"fault_message": "..."} with Firecracker's texts; routing mirrors
// parsed_request.rs (method, first path token, body present). Dispatch is synchronous
// and socket-free. One io_context thread.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "sim/common/guest_control.h"
#include "sim/common/rest_types.h"

namespace kuasar::sim::fc {

inline constexpr std::string_view kFcVersion = "1.10.1";
inline constexpr std::string_view kNotAfterBoot =
    "The requested operation is not supported after starting the microVM.";
inline constexpr std::string_view kNotBeforeBoot =
    "The requested operation is not supported before starting the microVM.";

class FcApi {
 public:
  struct Hooks {
    // PUT /vsock: bind the device's unix socket now, as Firecracker does.
    std::function<absl::Status(const nlohmann::json& vsock)> bind_vsock;
  };

  FcApi(GuestControl& guest, std::string instance_id, bool check_files, Hooks hooks);

  RestReply Dispatch(const RestRequest& request);
  // --config-file: every section as its PUT, then InstanceStart. Errors as fault messages.
  absl::Status ApplyConfigFile(const nlohmann::json& config);

  bool started() const { return started_; }
  static RestReply Fault(int status, std::string_view message);

 private:
  RestReply Put(const std::string& resource, const std::string& sub, const std::string& body);
  RestReply Patch(const std::string& resource, const std::string& body);
  RestReply PutDrive(const std::string& id, const std::string& body);
  RestReply PutNetwork(const std::string& id, const std::string& body);
  RestReply Action(const std::string& body);
  nlohmann::json FullConfig() const;
  std::string StateName() const;

  GuestControl& guest_;
  std::string id_;
  bool check_files_;
  Hooks hooks_;
  bool started_ = false, paused_ = false;
  nlohmann::json boot_source_, vsock_, logger_, metrics_, balloon_, entropy_, mmds_config_;
  nlohmann::json machine_ = {{"vcpu_count", 1},
                             {"mem_size_mib", 128},
                             {"smt", false},
                             {"track_dirty_pages", false},
                             {"huge_pages", "None"}};
  std::vector<nlohmann::json> drives_, nets_;
};

}  // namespace kuasar::sim::fc
