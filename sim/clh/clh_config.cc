#include "sim/clh/clh_config.h"

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"

namespace kuasar::sim::clh {

using nlohmann::json;

const std::vector<DeviceList>& DeviceLists() {
  static const std::vector<DeviceList> kLists = {{"disks", "_disk"},
                                                 {"net", "_net"},
                                                 {"fs", "_fs"},
                                                 {"pmem", "_pmem"},
                                                 {"devices", "_vfio"},
                                                 {"vdpa", "_vdpa"},
                                                 {"user_devices", "_user_device"}};
  return kLists;
}

namespace {

std::string TypeName(const json& v) {
  if (v.is_string()) return absl::StrFormat("string %s", v.dump());
  if (v.is_boolean()) return absl::StrFormat("boolean `%s`", v.dump());
  if (v.is_number_integer()) return absl::StrFormat("integer `%s`", v.dump());
  if (v.is_number()) return absl::StrFormat("floating point `%s`", v.dump());
  if (v.is_array()) return "sequence";
  if (v.is_null()) return "null";
  return "map";
}

absl::Status Invalid(const json& v, std::string_view expected) {
  return absl::InvalidArgumentError(
      absl::StrFormat("invalid type: %s, expected %s", TypeName(v), expected));
}

absl::Status Missing(std::string_view field) {
  return absl::InvalidArgumentError(absl::StrFormat("missing field `%s`", field));
}

enum class T { kString, kBool, kUint, kObject };

// Checks the fields present have the right type and the required ones are there.
absl::Status CheckFields(const json& obj, std::string_view what,
                         std::initializer_list<std::pair<const char*, T>> fields,
                         std::initializer_list<const char*> required) {
  if (!obj.is_object()) return Invalid(obj, absl::StrFormat("struct %s", what));
  for (const auto& [name, type] : fields) {
    auto it = obj.find(name);
    if (it == obj.end() || it->is_null()) continue;
    switch (type) {
      case T::kString:
        if (!it->is_string()) return Invalid(*it, "a string");
        break;
      case T::kBool:
        if (!it->is_boolean()) return Invalid(*it, "a boolean");
        break;
      case T::kUint:
        if (!it->is_number_integer() || it->get<int64_t>() < 0) return Invalid(*it, "u64");
        break;
      case T::kObject:
        if (!it->is_object()) return Invalid(*it, "a map");
        break;
    }
  }
  for (const char* r : required) {
    if (!obj.contains(r)) return Missing(r);
  }
  return absl::OkStatus();
}

absl::Status CheckDevice(const std::string& key, const json& d) {
  if (key == "disks") {
    return CheckFields(d, "DiskConfig",
                       {{"path", T::kString},
                        {"readonly", T::kBool},
                        {"direct", T::kBool},
                        {"id", T::kString},
                        {"num_queues", T::kUint},
                        {"queue_size", T::kUint}},
                       {});
  }
  if (key == "net") {
    return CheckFields(d, "NetConfig",
                       {{"tap", T::kString},
                        {"mac", T::kString},
                        {"ip", T::kString},
                        {"mask", T::kString},
                        {"id", T::kString},
                        {"mtu", T::kUint}},
                       {});
  }
  if (key == "fs") {
    return CheckFields(d, "FsConfig",
                       {{"tag", T::kString},
                        {"socket", T::kString},
                        {"num_queues", T::kUint},
                        {"queue_size", T::kUint},
                        {"id", T::kString}},
                       {"tag", "socket"});
  }
  if (key == "pmem") {
    return CheckFields(d, "PmemConfig",
                       {{"file", T::kString}, {"size", T::kUint}, {"id", T::kString}}, {"file"});
  }
  if (key == "vsock") {
    return CheckFields(d, "VsockConfig",
                       {{"cid", T::kUint}, {"socket", T::kString}, {"id", T::kString}},
                       {"cid", "socket"});
  }
  return CheckFields(d, "DeviceConfig", {{"path", T::kString}, {"id", T::kString}}, {});
}

void Default(json* obj, const char* key, json value) {
  if (!obj->contains(key) || (*obj)[key].is_null()) (*obj)[key] = std::move(value);
}

void CollectIds(const json& config, std::vector<std::string>* ids) {
  for (const DeviceList& l : DeviceLists()) {
    if (!config.contains(l.key) || !config[l.key].is_array()) continue;
    for (const json& d : config[l.key]) {
      if (d.is_object() && d.contains("id") && d["id"].is_string()) {
        ids->push_back(d["id"].get<std::string>());
      }
    }
  }
  if (config.contains("vsock") && config["vsock"].is_object() && config["vsock"].contains("id") &&
      config["vsock"]["id"].is_string()) {
    ids->push_back(config["vsock"]["id"].get<std::string>());
  }
}

}  // namespace

absl::Status NormalizeDevice(const std::string& key, json* d) {
  RETURN_IF_ERROR(CheckDevice(key, *d));
  if (key == "vsock" && (*d)["cid"].get<uint64_t>() < 3) {
    return absl::FailedPreconditionError("Invalid vsock CID");
  }
  if (key == "disks") {
    Default(d, "readonly", false);
    Default(d, "direct", false);
    Default(d, "num_queues", 1);
    Default(d, "queue_size", 128);
  } else if (key == "net") {
    Default(d, "ip", "192.168.249.1");
    Default(d, "mask", "255.255.255.0");
    Default(d, "num_queues", 2);
    Default(d, "queue_size", 256);
  } else if (key == "fs") {
    Default(d, "num_queues", 1);
    Default(d, "queue_size", 1024);
  }
  Default(d, "iommu", false);
  return absl::OkStatus();
}

absl::Status NormalizeVmConfig(json* c) {
  if (!c->is_object()) return Invalid(*c, "struct VmConfig");
  RETURN_IF_ERROR(CheckFields(*c, "VmConfig",
                              {{"cpus", T::kObject},
                               {"memory", T::kObject},
                               {"payload", T::kObject},
                               {"serial", T::kObject},
                               {"console", T::kObject},
                               {"rng", T::kObject},
                               {"iommu", T::kBool},
                               {"watchdog", T::kBool},
                               {"pvpanic", T::kBool}},
                              {"payload"}));
  json& payload = (*c)["payload"];
  RETURN_IF_ERROR(CheckFields(payload, "PayloadConfig",
                              {{"kernel", T::kString},
                               {"initramfs", T::kString},
                               {"cmdline", T::kString},
                               {"firmware", T::kString}},
                              {}));
  // Absent sections take CH's serde defaults (1 vCPU, 512 MiB); present ones need their
  // required fields.
  Default(c, "cpus", json{{"boot_vcpus", 1}, {"max_vcpus", 1}});
  json& cpus = (*c)["cpus"];
  RETURN_IF_ERROR(CheckFields(cpus, "CpusConfig",
                              {{"boot_vcpus", T::kUint}, {"max_vcpus", T::kUint}},
                              {"boot_vcpus", "max_vcpus"}));
  Default(c, "memory", json{{"size", 512ull << 20}});
  json& mem = (*c)["memory"];
  RETURN_IF_ERROR(CheckFields(mem, "MemoryConfig",
                              {{"size", T::kUint},
                               {"shared", T::kBool},
                               {"hugepages", T::kBool},
                               {"prefault", T::kBool},
                               {"thp", T::kBool}},
                              {"size"}));
  for (const DeviceList& l : DeviceLists()) {
    if (!c->contains(l.key) || (*c)[l.key].is_null()) continue;
    if (!(*c)[l.key].is_array()) return Invalid((*c)[l.key], "a sequence");
    for (json& d : (*c)[l.key]) RETURN_IF_ERROR(NormalizeDevice(l.key, &d));
  }
  if (c->contains("vsock") && !(*c)["vsock"].is_null()) {
    RETURN_IF_ERROR(NormalizeDevice("vsock", &(*c)["vsock"]));
  }
  // CH's VmConfig::validate.
  uint64_t boot = cpus["boot_vcpus"], max = cpus["max_vcpus"];
  if (boot == 0) return absl::FailedPreconditionError("No vCPUs specified for boot");
  if (max < boot) return absl::FailedPreconditionError("Max CPUs lower than boot CPUs");
  if (mem["size"].get<uint64_t>() == 0) {
    return absl::FailedPreconditionError("Memory size is invalid");
  }
  if (!payload.contains("kernel") && !payload.contains("firmware")) {
    return absl::FailedPreconditionError("No kernel specified");
  }
  std::vector<std::string> ids;
  CollectIds(*c, &ids);
  for (size_t i = 0; i < ids.size(); ++i) {
    for (size_t j = i + 1; j < ids.size(); ++j) {
      if (ids[i] == ids[j]) {
        return absl::FailedPreconditionError(
            absl::StrFormat("Identifier %s is not unique", ids[i]));
      }
    }
  }
  Default(&cpus, "kvm_hyperv", false);
  Default(&cpus, "max_phys_bits", 46);
  Default(&mem, "mergeable", false);
  Default(&mem, "hotplug_method", "Acpi");
  Default(&mem, "shared", false);
  Default(&mem, "hugepages", false);
  Default(&mem, "prefault", false);
  Default(&mem, "thp", true);
  Default(c, "serial", json{{"mode", "Null"}, {"iommu", false}});
  Default(c, "console", json{{"mode", "Tty"}, {"iommu", false}});
  Default(c, "rng", json{{"src", "/dev/urandom"}, {"iommu", false}});
  Default(c, "iommu", false);
  Default(c, "watchdog", false);
  Default(c, "pvpanic", false);
  return absl::OkStatus();
}

bool IdInUse(const json& config, const std::string& id) {
  std::vector<std::string> ids;
  CollectIds(config, &ids);
  for (const auto& i : ids) {
    if (i == id) return true;
  }
  return false;
}

void AssignDeviceIds(json* config, int* counter) {
  for (const DeviceList& l : DeviceLists()) {
    if (!config->contains(l.key) || !(*config)[l.key].is_array()) continue;
    for (json& d : (*config)[l.key]) {
      if (!d.contains("id")) d["id"] = absl::StrFormat("%s%d", l.prefix, (*counter)++);
    }
  }
  if (config->contains("vsock") && (*config)["vsock"].is_object() &&
      !(*config)["vsock"].contains("id")) {
    (*config)["vsock"]["id"] = absl::StrFormat("_vsock%d", (*counter)++);
  }
}

GuestSpec SpecFromConfig(const json& c) {
  GuestSpec spec;
  spec.memory_mib = static_cast<double>(c["memory"]["size"].get<uint64_t>()) / (1 << 20);
  spec.vcpus = static_cast<int>(c["cpus"]["boot_vcpus"].get<uint64_t>());
  spec.kernel_cmdline = c["payload"].value("cmdline", "");
  if (c.contains("fs") && c["fs"].is_array()) {
    for (const json& f : c["fs"]) {
      spec.shares.push_back(
          absl::StrFormat("%s=virtiofs:%s", f.value("tag", ""), f.value("socket", "")));
    }
  }
  return spec;
}

}  // namespace kuasar::sim::clh
