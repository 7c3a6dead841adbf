#include "runtime/sandboxers/vmm/conformance/driver_under_test.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/clh/clh_factory.h"
#include "runtime/sandboxers/vmm/firecracker/fc_factory.h"
#include "runtime/sandboxers/vmm/stratovirt/sv_factory.h"

namespace kuasar::vmm {

std::vector<std::string> DriversUnderTest() {
  return {"cloud-hypervisor", "firecracker", "stratovirt"};
}

namespace {

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

}  // namespace

std::string FakeVmmBinary() { return EnvOr("KUASAR_FAKE_VMM_BIN", KUASAR_FAKE_VMM_BIN); }
std::string VmmTaskBinary() { return EnvOr("KUASAR_VMM_TASK_BIN", KUASAR_VMM_TASK_PATH); }

std::string FakeVmmMissing() {
  if (::access(FakeVmmBinary().c_str(), X_OK) != 0) {
    return "the fake VMM is not built (" + FakeVmmBinary() +
           "): ninja kuasar-fake-vmm, or set KUASAR_FAKE_VMM_BIN";
  }
  if (::access(VmmTaskBinary().c_str(), X_OK) != 0) {
    return "the guest agent is not built (" + VmmTaskBinary() +
           "): ninja vmm-task, or set KUASAR_VMM_TASK_BIN";
  }
  return "";
}

absl::StatusOr<std::unique_ptr<HypervisorFactory>> MakeDriverFactory(const std::string& driver,
                                                                     const std::string& path,
                                                                     const std::string& kernel,
                                                                     const std::string& initrd,
                                                                     boost::asio::io_context& io) {
  if (driver == "cloud-hypervisor") {
    ClhConfig c;
    c.path = path;
    c.capabilities.keep_all = true;  // the fake VMM makes namespaces for the guest agent
    c.kernel_path = kernel;
    c.initrd_path = initrd;
    ASSIGN_OR_RETURN(auto f, ClhHypervisorFactory::Create(c, io));
    return std::unique_ptr<HypervisorFactory>(std::move(f));
  }
  if (driver == "firecracker") {
    FcConfig c;
    c.path = path;
    c.capabilities.keep_all = true;  // the fake VMM makes namespaces for the guest agent
    c.kernel_path = kernel;
    c.initrd_path = initrd;
    ASSIGN_OR_RETURN(auto f, FcHypervisorFactory::Create(c, io));
    return std::unique_ptr<HypervisorFactory>(std::move(f));
  }
  if (driver == "stratovirt") {
    SvConfig c;
    c.path = path;
    c.capabilities.keep_all = true;  // the fake VMM makes namespaces for the guest agent
    c.kernel_path = kernel;
    c.initrd_path = initrd;
    ASSIGN_OR_RETURN(auto f, SvHypervisorFactory::Create(c, io));
    return std::unique_ptr<HypervisorFactory>(std::move(f));
  }
  return absl::NotFoundError("no driver " + driver);
}

void ExpectAgentChannelKind(const std::string& driver, const AgentChannel& channel,
                            const std::string& socket_dir) {
  if (driver == "cloud-hypervisor" || driver == "firecracker") {
    EXPECT_EQ(channel.kind, AgentChannel::Kind::kHybridVsock);
    EXPECT_EQ(channel.path, socket_dir + "/vsock.sock");
    EXPECT_EQ(channel.port, 1024u);
    EXPECT_EQ(channel.TaskAddress(), "hvsock://" + socket_dir + "/vsock.sock:1024");
  } else {
    EXPECT_EQ(channel.kind, AgentChannel::Kind::kSerialSocket);
    EXPECT_EQ(channel.path, socket_dir + "/agent.sock");
    EXPECT_EQ(channel.TaskAddress(), "");
  }
}

bool SupportsHotplug(const std::string& driver) { return driver == "cloud-hypervisor"; }

std::string BootRequestPath(const std::string& driver) {
  if (driver == "cloud-hypervisor") return "/api/v1/vm.boot";
  if (driver == "firecracker") return "/actions";
  return "";
}

}  // namespace kuasar::vmm
