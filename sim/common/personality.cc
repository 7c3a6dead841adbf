#include "sim/common/personality.h"

namespace kuasar::sim {

std::optional<Personality> PersonalityFromName(std::string_view name) {
  if (name == "cloud-hypervisor" || name == "clh" || name == "cloud-hypervisor-static") {
    return Personality::kCloudHypervisor;
  }
  if (name == "firecracker" || name == "fc") return Personality::kFirecracker;
  if (name == "qemu-system-x86_64" || name == "qemu" || name == "qemu-kvm") {
    return Personality::kQemu;
  }
  if (name == "stratovirt") return Personality::kStratoVirt;
  return std::nullopt;
}

std::optional<Personality> PersonalityFromArgv0(std::string_view argv0) {
  size_t slash = argv0.rfind('/');
  if (slash != std::string_view::npos) argv0.remove_prefix(slash + 1);
  return PersonalityFromName(argv0);
}

std::string_view PersonalityName(Personality p) {
  switch (p) {
    case Personality::kCloudHypervisor:
      return "cloud-hypervisor";
    case Personality::kFirecracker:
      return "firecracker";
    case Personality::kQemu:
      return "qemu-system-x86_64";
    case Personality::kStratoVirt:
      return "stratovirt";
  }
  return "unknown";
}

}  // namespace kuasar::sim
