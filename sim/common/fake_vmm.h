// The fake VMM's entry point: picks the personality (argv[0] or --personality), takes the
// simulator's own flags out, loads the model and runs that VMM's main. See
// docs/fake-vmm.md. Call once, from main().
#pragma once

namespace kuasar::sim {

int RunFakeVmm(int argc, char** argv);

}  // namespace kuasar::sim
