#include "sim/common/fake_vmm.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "runtime/base/logging.h"
#include "sim/clh/clh_vmm.h"
#include "sim/common/sim_config.h"
#include "sim/common/sim_flags.h"
#include "sim/firecracker/fc_vmm.h"
#include "sim/qemu/qemu_vmm.h"
#include "sim/stratovirt/sv_vmm.h"

namespace kuasar::sim {

int RunFakeVmm(int argc, char** argv) {
  // Keep 0-2 taken, so no socket we open lands on a standard stream.
  for (int fd = 0; fd < 3; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0) ::open("/dev/null", O_RDWR);
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  auto flags = ExtractSimFlags(&args);
  if (!flags.ok()) {
    std::fprintf(stderr, "kuasar-fake-vmm: %s\n", std::string(flags.status().message()).c_str());
    return 1;
  }
  std::optional<Personality> personality = flags->personality;
  if (!personality) personality = PersonalityFromArgv0(argc > 0 ? argv[0] : "");
  if (!personality) {
    std::fprintf(stderr,
                 "kuasar-fake-vmm: which VMM should I play? Name the binary (or a symlink to it) "
                 "cloud-hypervisor, firecracker, qemu-system-x86_64 or stratovirt, or pass "
                 "--personality NAME.\n");
    return 1;
  }
  auto config = LoadSimConfig(*personality, *flags);
  if (!config.ok()) {
    std::fprintf(stderr, "kuasar-fake-vmm: %s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  if (absl::Status st = InitLogging(config->log_level, "kuasar-fake-vmm"); !st.ok()) {
    std::fprintf(stderr, "kuasar-fake-vmm: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  spdlog::debug("op=start personality={} model={} agent={}", PersonalityName(*personality),
                config->model_path.empty() ? "(built-in)" : config->model_path, config->agent.path);
  switch (*personality) {
    case Personality::kCloudHypervisor:
      return clh::RunCloudHypervisor(*config, args);
    case Personality::kFirecracker:
      return fc::RunFirecracker(*config, args);
    case Personality::kQemu:
      return qemu::RunQemu(*config, args, argc > 0 ? argv[0] : "qemu-system-x86_64");
    case Personality::kStratoVirt:
      return stratovirt::RunStratoVirt(*config, args);
  }
  return 1;
}

}  // namespace kuasar::sim
