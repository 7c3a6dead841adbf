// libFuzzer target: QMP bytes through the session (JSON stream framing, envelope checks,
// negotiation) and the QEMU/StratoVirt command set over a no-op guest; no sockets. The
// first byte picks the dialect and whether the machine starts paused (-S).
#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

#include "sim/common/fault_injector.h"
#include "sim/common/guest_control.h"
#include "sim/common/qmp_machine.h"
#include "sim/common/qmp_session.h"

using namespace kuasar::sim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const QmpDialect dialect = (data[0] & 1) ? QmpDialect::kStratoVirt : QmpDialect::kQemu;
  boost::asio::io_context io;
  NoopGuest guest;
  FaultPlan plan;
  FaultInjector faults(io, plan, nullptr);
  QmpMachineConfig mc;
  mc.dialect = dialect;
  mc.start_paused = (data[0] & 2) != 0;
  mc.vcpus = 2;
  mc.version = {{"qemu", {{"micro", 0}, {"minor", 2}, {"major", 7}}}, {"package", "fuzz"}};
  QmpMachine machine(io, mc, guest, &faults, [](int) {});
  machine.AddColdDevice("vs0", {{"driver", "virtio-serial-pci"}});
  size_t out_bytes = 0;
  std::unique_ptr<QmpSession> session;
  session = std::make_unique<QmpSession>(
      dialect, OJson{{"QMP", {{"version", mc.version}, {"capabilities", OJson::array()}}}},
      [&](QmpSession& s, const std::string& c, const OJson& a, QmpSession::Done d) {
        machine.Execute(s, c, a, std::move(d));
      },
      [&](std::string bytes) { out_bytes += bytes.size(); },
      [&](const OJson& ev) { session->SendEvent(ev); });
  machine.SetBroadcast([&](const OJson& ev) { session->SendEvent(ev); });
  session->Start();
  (void)machine.Start();
  // Feed in two pieces so framing across reads is exercised.
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t cut = in.size() / 2;
  session->Feed(in.substr(0, cut));
  session->Feed(in.substr(cut));
  // Slowed commands complete on the loop; run it briefly (delays are capped by the input).
  io.run_for(std::chrono::milliseconds(0));
  return 0;
}
