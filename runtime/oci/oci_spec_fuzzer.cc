// libFuzzer target: the OCI runtime-spec reader (config.json from containerd's bundle and
// Task.Exec's process spec). Malformed documents must give an error naming the field.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runtime/oci/oci_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  auto spec = kuasar::OciSpec::Parse(json);
  if (spec.ok()) {
    (void)spec->terminal();
    (void)spec->cgroups_path();
    (void)spec->annotation("io.kubernetes.cri.container-type");
    (void)spec->HasMountAt("/etc/hosts");
    if (spec->JoinsNamespace("network")) (void)spec->TakeSysctls("net.");
    spec->DropJoinedNamespaces();
    spec->AddBindMount("/tmp/x", "/etc/hosts", true);
  }
  bool terminal = false;
  (void)kuasar::ValidateProcessJson(json, &terminal);
  return 0;
}
