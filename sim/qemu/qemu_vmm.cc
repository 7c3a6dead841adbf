#include "sim/qemu/qemu_vmm.h"

#include "sim/common/qmp_vmm.h"

namespace kuasar::sim::qemu {

int RunQemu(const SimConfig& config, const std::vector<std::string>& args,
            const std::string& argv0) {
  QmpVmmFlavor f;
  f.dialect = QmpDialect::kQemu;
  size_t slash = argv0.rfind('/');
  f.prog = slash == std::string::npos ? argv0 : argv0.substr(slash + 1);
  if (f.prog.empty() || f.prog == "kuasar-fake-vmm") f.prog = "qemu-system-x86_64";
  // QEMU 7.2 as Debian 12 ships it (the QEMU these machines run), marked as simulated.
  f.version_text =
      "QEMU emulator version 7.2.22 (kuasar-fake-vmm)\n"
      "Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers";
  f.version = {{"qemu", {{"micro", 22}, {"minor", 2}, {"major", 7}}},
               {"package", "kuasar-fake-vmm"}};
  f.greeting = {{"QMP", {{"version", f.version}, {"capabilities", OJson::array({"oob"})}}}};
  f.replace_sockets = true;  // QEMU unlinks a leftover socket file
  return RunQmpVmm(f, config, args);
}

}  // namespace kuasar::sim::qemu
