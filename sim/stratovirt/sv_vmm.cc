#include "sim/stratovirt/sv_vmm.h"

#include "sim/common/qmp_vmm.h"

namespace kuasar::sim::stratovirt {

int RunStratoVirt(const SimConfig& config, const std::vector<std::string>& args) {
  QmpVmmFlavor f;
  f.dialect = QmpDialect::kStratoVirt;
  f.prog = "stratovirt";
  f.version_text = "StratoVirt 2.4.0 (kuasar-fake-vmm)";
  // qmp_response.rs: QmpGreeting::create_greeting(1, 0, 5), package "StratoVirt-<version>".
  f.version = {{"qemu", {{"micro", 1}, {"minor", 0}, {"major", 5}}},
               {"package", "StratoVirt-2.4.0"}};
  f.greeting = {{"QMP", {{"version", f.version}, {"capabilities", OJson::array()}}}};
  f.replace_sockets = false;  // "If the socket of api-channel exists, remove it first."
  return RunQmpVmm(f, config, args);
}

}  // namespace kuasar::sim::stratovirt
