#include "sim/clh/clh_api.h"

#include <unistd.h>

#include <cstring>

#include "absl/strings/str_format.h"
#include "sim/clh/clh_config.h"

namespace kuasar::sim::clh {

using nlohmann::json;

namespace {

constexpr std::string_view kRoot = "/api/v1/";
constexpr const char* kFromApi = "Error from API";
constexpr const char* kNotRunning = "VM is not running";

// vm.add-<kind> -> (config list, ApiError message).
struct AddKind {
  const char* endpoint;
  const char* list;
  const char* top;
};
constexpr AddKind kAdds[] = {
    {"vm.add-disk", "disks", "The disk could not be added to the VM"},
    {"vm.add-net", "net", "The network device could not be added to the VM"},
    {"vm.add-fs", "fs", "The fs could not be added to the VM"},
    {"vm.add-pmem", "pmem", "The pmem device could not be added to the VM"},
    {"vm.add-device", "devices", "The device could not be added to the VM"},
    {"vm.add-vdpa", "vdpa", "The vDPA device could not be added to the VM"},
    {"vm.add-user-device", "user_devices", "The user device could not be added to the VM"},
    {"vm.add-vsock", "vsock", "The vsock device could not be added to the VM"},
};

constexpr const char* kUnsupported[] = {
    "vm.snapshot",          "vm.restore",     "vm.coredump",    "vm.send-migration",
    "vm.receive-migration", "vm.resize-zone", "vm.resize-disk", "vm.add-generic-vhost-user"};

RestReply Ok200(const json& body) { return RestReply{200, body.dump(), nullptr}; }
RestReply NoContent() { return RestReply{204, "", nullptr}; }

RestReply Deserialize(std::string_view what) {
  return ClhApi::Error(400, {"Failed to deserialize JSON", std::string(what)});
}

std::optional<json> ParseBody(const std::string& body, RestReply* err) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) {
    *err = Deserialize("expected value at line 1 column 1");
    return std::nullopt;
  }
  return j;
}

}  // namespace

RestReply ClhApi::Error(int status, std::vector<std::string> chain) {
  return RestReply{status, json(chain).dump(-1, ' ', false, json::error_handler_t::replace),
                   nullptr};
}

ClhApi::ClhApi(GuestControl& guest, bool check_files, Hooks hooks)
    : guest_(guest), check_files_(check_files), hooks_(std::move(hooks)) {}

std::string ClhApi::StateName() const {
  switch (state_) {
    case State::kRunning:
      return "Running";
    case State::kPaused:
      return "Paused";
    default:
      return "Created";
  }
}

RestReply ClhApi::Dispatch(const RestRequest& req) {
  if (req.method != "GET" && req.method != "PUT") return RestReply{400, "", nullptr};
  if (req.path.rfind(kRoot, 0) != 0) return Error(404, {"Not Found"});
  const std::string ep = req.path.substr(kRoot.size());
  const bool get = req.method == "GET";
  const bool body = !req.body.empty();
  auto bad = [] { return Error(400, {"Bad Request"}); };

  if (ep == "vmm.ping") {
    if (!get) return bad();
    return Ok200({{"build_version", absl::StrFormat("v%s-0-kuasar-fake-vmm", kClhVersion)},
                  {"version", kClhVersion},
                  {"pid", ::getpid()},
                  {"features", json::array({"kvm"})}});
  }
  if (ep == "vm.info") return get ? Info() : bad();
  if (ep == "vm.counters") {
    if (!get) return bad();
    if (!running()) return Error(500, {kFromApi, "The VM info is not available", kNotRunning});
    return Ok200(json::object());
  }
  if (get) {
    bool known = ep == "vm.create" || ep == "vm.boot" || ep == "vm.shutdown" || ep == "vm.reboot" ||
                 ep == "vm.pause" || ep == "vm.resume" || ep == "vm.delete" ||
                 ep == "vmm.shutdown" || ep == "vm.power-button" || ep == "vm.nmi" ||
                 ep == "vm.remove-device" || ep == "vm.resize";
    for (const AddKind& a : kAdds) known = known || ep == a.endpoint;
    for (const char* u : kUnsupported) known = known || ep == u;
    return known ? bad() : Error(404, {"Not Found"});
  }
  if (ep == "vm.create") {
    if (!body) return RestReply{400, "", nullptr};
    return Create(req.body);
  }
  for (const AddKind& a : kAdds) {
    if (ep == a.endpoint) return body ? AddDevice(a.list, req.body) : bad();
  }
  if (ep == "vm.remove-device") return body ? RemoveDevice(req.body) : bad();
  if (ep == "vm.resize") return body ? Resize(req.body) : bad();
  for (const char* u : kUnsupported) {
    if (ep == u) {
      return Error(500, {kFromApi, absl::StrFormat("%s is not simulated by kuasar-fake-vmm", ep)});
    }
  }
  // The rest take no body.
  bool no_body_endpoint = ep == "vm.boot" || ep == "vm.shutdown" || ep == "vm.reboot" ||
                          ep == "vm.pause" || ep == "vm.resume" || ep == "vm.delete" ||
                          ep == "vmm.shutdown" || ep == "vm.power-button" || ep == "vm.nmi";
  if (!no_body_endpoint) return Error(404, {"Not Found"});
  if (body) return bad();
  if (ep == "vm.boot") return Boot();
  if (ep == "vm.shutdown") return Shutdown("The VM could not shutdown");
  if (ep == "vm.pause") return PauseResume(true);
  if (ep == "vm.resume") return PauseResume(false);
  if (ep == "vm.reboot") {
    if (!running()) return Error(500, {kFromApi, "The VM could not reboot", kNotRunning});
    if (absl::Status st = guest_.Reset(); !st.ok()) {
      return Error(500, {kFromApi, "The VM could not reboot", std::string(st.message())});
    }
    state_ = guest_.paused() ? State::kPaused : State::kRunning;
    return NoContent();
  }
  if (ep == "vm.power-button" || ep == "vm.nmi") {
    if (!running()) {
      return Error(
          500, {kFromApi, ep == "vm.nmi" ? "Error triggering NMI" : "Error triggering power button",
                kNotRunning});
    }
    if (ep == "vm.power-button") guest_.PowerButton();
    return NoContent();
  }
  if (ep == "vm.delete") {
    if (running()) {
      guest_.PowerOff();
      if (hooks_.after_power_off) hooks_.after_power_off();
    }
    state_ = State::kNone;
    config_ = json();
    bdf_.clear();
    return NoContent();
  }
  // vmm.shutdown: the VM goes, then the process, once the 204 is out.
  if (running()) {
    guest_.PowerOff();
    if (hooks_.after_power_off) hooks_.after_power_off();
  }
  RestReply r = NoContent();
  r.after_sent = hooks_.exit_vmm;
  return r;
}

RestReply ClhApi::Create(const std::string& body) {
  RestReply err;
  std::optional<json> config = ParseBody(body, &err);
  if (!config) return err;
  absl::Status st = NormalizeVmConfig(&*config);
  if (absl::IsInvalidArgument(st)) return Deserialize(std::string(st.message()));
  if (state_ != State::kNone) {
    return Error(500, {kFromApi, "The VM could not be created", "VM is already created"});
  }
  if (!st.ok()) {
    return Error(500, {kFromApi, "The VM could not be created", "Error validating configuration",
                       std::string(st.message())});
  }
  config_ = std::move(*config);
  state_ = State::kCreated;
  return NoContent();
}

RestReply ClhApi::Boot() {
  constexpr const char* kTop = "The VM could not boot";
  if (state_ == State::kNone) return Error(404, {kFromApi, kTop, "VM config is missing"});
  if (running()) {
    return Error(500, {kFromApi, kTop,
                       absl::StrFormat("invalid VM state transition: %s to Running", StateName())});
  }
  if (check_files_) {
    for (const char* key : {"kernel", "initramfs", "firmware"}) {
      const json& p = config_["payload"];
      if (!p.contains(key)) continue;
      std::string path = p[key].get<std::string>();
      if (::access(path.c_str(), R_OK) != 0) {
        std::string what = std::strcmp(key, "initramfs") == 0 ? "initramfs" : "kernel";
        return Error(500, {kFromApi, kTop,
                           absl::StrFormat("Cannot open %s file: %s (os error %d)", what,
                                           std::strerror(errno), errno)});
      }
    }
  }
  AssignDeviceIds(&config_, &id_counter_);
  bdf_.clear();
  next_slot_ = 1;
  for (const DeviceList& l : DeviceLists()) {
    if (!config_.contains(l.key) || !config_[l.key].is_array()) continue;
    for (const json& d : config_[l.key]) {
      bdf_[d["id"].get<std::string>()] = absl::StrFormat("0000:00:%02x.0", next_slot_++);
    }
  }
  if (config_.contains("vsock") && config_["vsock"].is_object()) {
    bdf_[config_["vsock"]["id"].get<std::string>()] =
        absl::StrFormat("0000:00:%02x.0", next_slot_++);
  }
  if (hooks_.before_boot) {
    if (absl::Status st = hooks_.before_boot(config_); !st.ok()) {
      return Error(500, {kFromApi, kTop, std::string(st.message())});
    }
  }
  if (absl::Status st = guest_.PowerOn(SpecFromConfig(config_)); !st.ok()) {
    return Error(500, {kFromApi, kTop, std::string(st.message())});
  }
  state_ = State::kRunning;
  return NoContent();
}

RestReply ClhApi::Info() const {
  if (state_ == State::kNone) {
    return Error(404, {kFromApi, "The VM info is not available", "VM is not created"});
  }
  json info = {{"config", config_},
               {"state", StateName()},
               {"memory_actual_size", config_["memory"]["size"]}};
  if (running()) {
    json tree = json::object();
    for (const auto& [id, bdf] : bdf_) {
      tree[id] = {
          {"id", id}, {"resources", json::array()}, {"children", json::array()}, {"pci_bdf", bdf}};
    }
    info["device_tree"] = tree;
  }
  return Ok200(info);
}

RestReply ClhApi::Shutdown(const char* top) {
  if (!running()) return Error(500, {kFromApi, top, kNotRunning});
  guest_.PowerOff();
  if (hooks_.after_power_off) hooks_.after_power_off();
  state_ = State::kCreated;
  return NoContent();
}

RestReply ClhApi::PauseResume(bool pause) {
  const char* top = pause ? "The VM could not be paused" : "The VM could not resume";
  if (!running()) return Error(500, {kFromApi, top, kNotRunning});
  if ((state_ == State::kPaused) == pause) {
    return Error(500, {kFromApi, top,
                       absl::StrFormat("invalid VM state transition: %s to %s", StateName(),
                                       pause ? "Paused" : "Running")});
  }
  guest_.SetPaused(pause);
  state_ = pause ? State::kPaused : State::kRunning;
  return NoContent();
}

RestReply ClhApi::AddDevice(const std::string& list, const std::string& body) {
  const char* top = "";
  for (const AddKind& a : kAdds) {
    if (list == a.list) top = a.top;
  }
  RestReply err;
  std::optional<json> dev = ParseBody(body, &err);
  if (!dev) return err;
  absl::Status st = NormalizeDevice(list, &*dev);
  if (absl::IsInvalidArgument(st)) return Deserialize(std::string(st.message()));
  if (state_ == State::kNone) return Error(404, {kFromApi, top, "VM is not created"});
  if (!st.ok()) return Error(500, {kFromApi, top, std::string(st.message())});
  if (dev->contains("id") && IdInUse(config_, (*dev)["id"].get<std::string>())) {
    return Error(500,
                 {kFromApi, top, "Error validating configuration",
                  absl::StrFormat("Identifier %s is not unique", (*dev)["id"].get<std::string>())});
  }
  if (list == "vsock" && config_.contains("vsock") && !config_["vsock"].is_null()) {
    return Error(500, {kFromApi, top, "Error validating configuration",
                       "Only one vsock device is supported"});
  }
  if (!running()) {  // cold plug: only the config changes
    if (list == "vsock") {
      config_["vsock"] = *dev;
    } else {
      config_[list].push_back(*dev);
    }
    return NoContent();
  }
  const char* prefix = "_vsock";
  for (const DeviceList& l : DeviceLists()) {
    if (list == l.key) prefix = l.prefix;
  }
  if (!dev->contains("id")) (*dev)["id"] = absl::StrFormat("%s%d", prefix, id_counter_++);
  if (list == "vsock" && hooks_.add_vsock) {
    if (absl::Status vst = hooks_.add_vsock(*dev); !vst.ok()) {
      return Error(500, {kFromApi, top, std::string(vst.message())});
    }
  }
  std::string id = (*dev)["id"];
  std::string bdf = absl::StrFormat("0000:00:%02x.0", next_slot_++);
  bdf_[id] = bdf;
  if (list == "vsock") {
    config_["vsock"] = *dev;
  } else {
    config_[list].push_back(*dev);
  }
  return Ok200({{"id", id}, {"bdf", bdf}});
}

RestReply ClhApi::RemoveDevice(const std::string& body) {
  constexpr const char* kTop = "The device could not be removed from the VM";
  RestReply err;
  std::optional<json> req = ParseBody(body, &err);
  if (!req) return err;
  if (!req->is_object() || !req->contains("id") || !(*req)["id"].is_string()) {
    return Deserialize("missing field `id`");
  }
  if (state_ == State::kNone) return Error(404, {kFromApi, kTop, "VM is not created"});
  std::string id = (*req)["id"];
  for (const DeviceList& l : DeviceLists()) {
    if (!config_.contains(l.key) || !config_[l.key].is_array()) continue;
    json& arr = config_[l.key];
    for (size_t i = 0; i < arr.size(); ++i) {
      if (arr[i].value("id", "") == id) {
        arr.erase(i);
        bdf_.erase(id);
        return NoContent();
      }
    }
  }
  if (config_.contains("vsock") && config_["vsock"].is_object() &&
      config_["vsock"].value("id", "") == id) {
    config_.erase("vsock");
    bdf_.erase(id);
    return NoContent();
  }
  return Error(404, {kFromApi, kTop, absl::StrFormat("Unknown device id: %s", id)});
}

RestReply ClhApi::Resize(const std::string& body) {
  RestReply err;
  std::optional<json> req = ParseBody(body, &err);
  if (!req) return err;
  if (!req->is_object()) return Deserialize("invalid type, expected struct VmResizeData");
  if (state_ == State::kNone) {
    return Error(404, {kFromApi, "The VM could not be resized", "VM is not created"});
  }
  if (req->contains("desired_vcpus") && (*req)["desired_vcpus"].is_number_unsigned()) {
    config_["cpus"]["boot_vcpus"] = (*req)["desired_vcpus"];
  }
  if (req->contains("desired_ram") && (*req)["desired_ram"].is_number_unsigned()) {
    config_["memory"]["size"] = (*req)["desired_ram"];
  }
  return NoContent();
}

}  // namespace kuasar::sim::clh
