#include "sim/firecracker/fc_api.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "sim/firecracker/fc_body.h"

namespace kuasar::sim::fc {

using nlohmann::json;

namespace {

RestReply NoContent() { return RestReply{204, "", nullptr}; }
RestReply Ok(const json& j) { return RestReply{200, j.dump(), nullptr}; }

std::string OsError(int err) {
  return absl::StrFormat("%s (os error %d)", std::strerror(err), err);
}

}  // namespace

RestReply FcApi::Fault(int status, std::string_view message) {
  // The message may quote request bytes (the path): never let bad UTF-8 throw.
  return RestReply{status,
                   json{{"fault_message", message}}.dump(-1, ' ', false,
                                                         json::error_handler_t::replace),
                   nullptr};
}

FcApi::FcApi(GuestControl& guest, std::string instance_id, bool check_files, Hooks hooks)
    : guest_(guest),
      id_(std::move(instance_id)),
      check_files_(check_files),
      hooks_(std::move(hooks)) {}

std::string FcApi::StateName() const {
  if (!started_) return "Not started";
  return paused_ ? "Paused" : "Running";
}

json FcApi::FullConfig() const {
  return {{"balloon", balloon_},   {"drives", drives_},           {"boot-source", boot_source_},
          {"cpu-config", nullptr}, {"logger", logger_},           {"machine-config", machine_},
          {"metrics", metrics_},   {"mmds-config", mmds_config_}, {"network-interfaces", nets_},
          {"vsock", vsock_},       {"entropy", entropy_}};
}

RestReply FcApi::Dispatch(const RestRequest& req) {
  std::string_view path = req.path;
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  std::string_view first = path.substr(0, path.find('/'));
  std::string rest = path.find('/') == std::string_view::npos
                         ? std::string()
                         : std::string(path.substr(path.find('/') + 1));
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  const bool body = !req.body.empty();
  const std::string res(first);

  if (req.method == "GET") {
    if (body) return Fault(400, "GET request cannot have a body.");
    if (res.empty()) {
      return Ok({{"id", id_},
                 {"state", StateName()},
                 {"vmm_version", kFcVersion},
                 {"app_name", "Firecracker"}});
    }
    if (res == "version") return Ok({{"firecracker_version", kFcVersion}});
    if (res == "machine-config") return Ok(machine_);
    if (res == "vm" && rest == "config") return Ok(FullConfig());
    if (res == "balloon" && rest.empty()) {
      if (balloon_.is_null()) return Fault(400, "Invalid request method and/or path: GET balloon.");
      return Ok(balloon_);
    }
  } else if (req.method == "PUT") {
    if (!body) return Fault(400, "Empty PUT request.");
    static const char* const kPut[] = {"actions",
                                       "balloon",
                                       "boot-source",
                                       "cpu-config",
                                       "drives",
                                       "logger",
                                       "serial",
                                       "machine-config",
                                       "metrics",
                                       "mmds",
                                       "network-interfaces",
                                       "snapshot",
                                       "vsock",
                                       "entropy"};
    for (const char* p : kPut) {
      if (res == p) return Put(res, rest, req.body);
    }
  } else if (req.method == "PATCH") {
    if (!body) return Fault(400, "Empty PATCH request.");
    if (res == "vm" || res == "machine-config" || res == "drives" || res == "network-interfaces" ||
        res == "balloon" || res == "mmds") {
      return Patch(res, req.body);
    }
  }
  return Fault(400, absl::StrFormat("Invalid request method and/or path: %s %s.", req.method, res));
}

RestReply FcApi::Put(const std::string& res, const std::string& sub, const std::string& body) {
  if (res == "actions") return Action(body);
  if (res == "snapshot") {
    if (sub != "create" && sub != "load") {
      return Fault(400,
                   absl::StrFormat("Invalid request method and/or path: PUT snapshot/%s.", sub));
    }
    return Fault(400, "Snapshots are not simulated by kuasar-fake-vmm.");
  }
  // Everything else is pre-boot configuration.
  if (started_) return Fault(400, kNotAfterBoot);
  if (res == "drives") return PutDrive(sub, body);
  if (res == "network-interfaces") return PutNetwork(sub, body);
  if (res == "boot-source") {
    auto b = ParseBootSource(body);
    if (!b.ok()) return Fault(400, std::string(b.status().message()));
    if (check_files_) {
      if (::access((*b)["kernel_image_path"].get<std::string>().c_str(), R_OK) != 0) {
        return Fault(400, "The kernel file cannot be opened: " + OsError(errno));
      }
      if (b->contains("initrd_path") &&
          ::access((*b)["initrd_path"].get<std::string>().c_str(), R_OK) != 0) {
        return Fault(400,
                     "The initrd file cannot be opened due to invalid path or invalid "
                     "permissions. " +
                         OsError(errno));
      }
    }
    boot_source_ = *b;
    return NoContent();
  }
  if (res == "machine-config") {
    auto m = ParseMachineConfig(body, false);
    if (!m.ok()) return Fault(400, std::string(m.status().message()));
    uint64_t vcpus = (*m)["vcpu_count"], mem = (*m)["mem_size_mib"];
    bool smt = m->value("smt", false);
    if (vcpus == 0 || vcpus > 32 || (smt && vcpus > 1 && vcpus % 2 != 0)) {
      return Fault(400,
                   "The vCPU number is invalid! The vCPU number can only be 1 or an even "
                   "number when SMT is enabled.");
    }
    if (mem == 0) return Fault(400, "The memory size (MiB) is invalid.");
    json next = {{"vcpu_count", vcpus},
                 {"mem_size_mib", mem},
                 {"smt", smt},
                 {"track_dirty_pages", m->value("track_dirty_pages", false)},
                 {"huge_pages", m->value("huge_pages", "None")}};
    if (m->contains("cpu_template")) next["cpu_template"] = (*m)["cpu_template"];
    machine_ = next;
    return NoContent();
  }
  if (res == "vsock") {
    auto v = ParseVsock(body);
    if (!v.ok()) return Fault(400, std::string(v.status().message()));
    if ((*v)["guest_cid"].get<uint64_t>() < 3) return Fault(400, "Invalid guest CID.");
    if (hooks_.bind_vsock) {
      if (absl::Status st = hooks_.bind_vsock(*v); !st.ok()) {
        return Fault(400,
                     absl::StrFormat("Cannot create backend for vsock device: %s", st.message()));
      }
    }
    vsock_ = *v;
    return NoContent();
  }
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Fault(400,
                 "An error occurred when deserializing the json body of a request: "
                 "expected value at line 1 column 1.");
  }
  if (res == "logger") logger_ = j;
  if (res == "metrics") metrics_ = j;
  if (res == "balloon") balloon_ = j;
  if (res == "entropy") entropy_ = j;
  if (res == "mmds" && sub == "config") mmds_config_ = j;
  return NoContent();  // cpu-config, serial, mmds: accepted, not modelled
}

RestReply FcApi::PutDrive(const std::string& id, const std::string& body) {
  if (absl::Status st = CheckId(id); !st.ok()) return Fault(400, std::string(st.message()));
  auto d = ParseDrive(body);
  if (!d.ok()) return Fault(400, std::string(d.status().message()));
  if ((*d)["drive_id"] != id) {
    return Fault(400, "The id from the path does not match the id from the body!");
  }
  bool root = (*d)["is_root_device"];
  for (const json& other : drives_) {
    if (root && other["is_root_device"] && other["drive_id"] != id) {
      return Fault(400, "A root block device already exists!");
    }
  }
  if (check_files_ && d->contains("path_on_host") &&
      ::access((*d)["path_on_host"].get<std::string>().c_str(), R_OK) != 0) {
    return Fault(400, absl::StrFormat("Unable to create the virtio block device: Virtio backend "
                                      "error: Error manipulating the backing file: %s %s",
                                      OsError(errno), (*d)["path_on_host"].get<std::string>()));
  }
  for (json& other : drives_) {
    if (other["drive_id"] == id) {
      other = *d;
      return NoContent();
    }
  }
  drives_.push_back(*d);
  return NoContent();
}

RestReply FcApi::PutNetwork(const std::string& id, const std::string& body) {
  if (absl::Status st = CheckId(id); !st.ok()) return Fault(400, std::string(st.message()));
  auto n = ParseNetworkInterface(body);
  if (!n.ok()) return Fault(400, std::string(n.status().message()));
  if ((*n)["iface_id"] != id) {
    return Fault(400, "The id from the path does not match the id from the body!");
  }
  for (json& other : nets_) {
    if (other["iface_id"] == id) {
      other = *n;
      return NoContent();
    }
  }
  nets_.push_back(*n);
  return NoContent();
}

RestReply FcApi::Action(const std::string& body) {
  auto a = ParseAction(body);
  if (!a.ok()) return Fault(400, std::string(a.status().message()));
  std::string type = (*a)["action_type"];
  if (type == "FlushMetrics") return NoContent();
  if (type == "SendCtrlAltDel") {
    if (!started_) return Fault(400, kNotBeforeBoot);
    guest_.PowerButton();
    return NoContent();
  }
  if (started_) return Fault(400, kNotAfterBoot);
  if (boot_source_.is_null())
    return Fault(400, "Cannot start microvm without kernel configuration.");
  GuestSpec spec;
  spec.memory_mib = machine_["mem_size_mib"].get<double>();
  spec.vcpus = machine_["vcpu_count"].get<int>();
  spec.kernel_cmdline = boot_source_.value("boot_args", "");
  if (absl::Status st = guest_.PowerOn(spec); !st.ok()) {
    return Fault(400, absl::StrFormat("Failed to start microVM: %s", st.message()));
  }
  started_ = true;
  return NoContent();
}

RestReply FcApi::Patch(const std::string& res, const std::string& body) {
  if (res == "vm") {
    auto v = ParseVmState(body);
    if (!v.ok()) return Fault(400, std::string(v.status().message()));
    if (!started_) return Fault(400, kNotBeforeBoot);
    bool pause = (*v)["state"] == "Paused";
    guest_.SetPaused(pause);
    paused_ = pause;
    return NoContent();
  }
  if (res == "machine-config") {
    if (started_) return Fault(400, kNotAfterBoot);
    auto m = ParseMachineConfig(body, true);
    if (!m.ok()) return Fault(400, std::string(m.status().message()));
    for (const auto& [k, v] : m->items()) machine_[k] = v;
    return NoContent();
  }
  // drives, network-interfaces, balloon, mmds: post-boot updates, accepted.
  if (!started_ && (res == "drives" || res == "network-interfaces")) {
    return Fault(400, kNotBeforeBoot);
  }
  return NoContent();
}

absl::Status FcApi::ApplyConfigFile(const json& config) {
  if (!config.is_object()) return absl::InvalidArgumentError("config file: expected an object");
  auto put = [&](const std::string& path, const json& body) -> absl::Status {
    RestReply r = Dispatch({"PUT", path, body.dump()});
    if (r.status >= 300) {
      json f = json::parse(r.body, nullptr, false);
      return absl::InvalidArgumentError(f.is_object() ? f.value("fault_message", r.body) : r.body);
    }
    return absl::OkStatus();
  };
  for (const auto& [k, v] : config.items()) {
    if (v.is_null()) continue;
    absl::Status st;
    if (k == "drives" || k == "network-interfaces") {
      if (!v.is_array()) return absl::InvalidArgumentError(k + ": expected an array");
      for (const json& d : v) {
        const char* key = k == "drives" ? "drive_id" : "iface_id";
        std::string id = d.is_object() && d.contains(key) && d[key].is_string()
                             ? d[key].get<std::string>()
                             : std::string();
        st = put("/" + k + "/" + id, d);
        if (!st.ok()) return st;
      }
      continue;
    }
    if (k == "mmds-config") {
      st = put("/mmds/config", v);
    } else {
      st = put("/" + k, v);
    }
    if (!st.ok()) return st;
  }
  RestReply r = Dispatch({"PUT", "/actions", R"({"action_type":"InstanceStart"})"});
  if (r.status >= 300) {
    json f = json::parse(r.body, nullptr, false);
    return absl::InvalidArgumentError(f.is_object() ? f.value("fault_message", r.body) : r.body);
  }
  return absl::OkStatus();
}

}  // namespace kuasar::sim::fc
