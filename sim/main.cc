// kuasar-fake-vmm: one binary, four VMMs (Cloud Hypervisor, Firecracker, QEMU,
// StratoVirt), chosen by argv[0] or --personality. See docs/fake-vmm.md.
#include "sim/common/fake_vmm.h"

int main(int argc, char** argv) { return kuasar::sim::RunFakeVmm(argc, argv); }
