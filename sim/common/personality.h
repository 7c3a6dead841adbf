// Which VMM the fake VMM plays. One binary serves all four; the personality comes from
// argv[0]'s basename (a symlink or copy named like the real binary) or --personality.
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string_view>

namespace kuasar::sim {

enum class Personality { kCloudHypervisor, kFirecracker, kQemu, kStratoVirt };

// Accepts the real binary names (cloud-hypervisor, firecracker, qemu-system-x86_64,
// stratovirt) and short aliases (clh, fc, qemu).
std::optional<Personality> PersonalityFromName(std::string_view name);

// From argv[0]: its basename, with a trailing ".exe"-free name; nullopt when it names none.
std::optional<Personality> PersonalityFromArgv0(std::string_view argv0);

// The real binary's name: "cloud-hypervisor", "firecracker", "qemu-system-x86_64",
// "stratovirt". Also the basename of the default model file (fixtures/sim/<name>.toml).
std::string_view PersonalityName(Personality p);

}  // namespace kuasar::sim
