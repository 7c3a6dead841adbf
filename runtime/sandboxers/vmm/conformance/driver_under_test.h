// Test support for the driver contract suite: which drivers it runs, and each one's
// factory configured to play against the fake VMM's personality of the same name.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/sandboxers/vmm/hypervisor.h"

namespace kuasar::vmm {

std::vector<std::string> DriversUnderTest();
// The fake VMM and the agent: $KUASAR_FAKE_VMM_BIN / $KUASAR_VMM_TASK_BIN if set (to use
// another build's), else this build's targets.
std::string FakeVmmBinary();
std::string VmmTaskBinary();
// Why the suite cannot run here ("" when it can): the fake VMM or vmm-task not built.
std::string FakeVmmMissing();
// `driver`'s factory running `vmm_path` (a symlink to the fake VMM named like the real
// binary: the fake picks its personality from argv[0]), booting `kernel` and `initrd`.
absl::StatusOr<std::unique_ptr<HypervisorFactory>> MakeDriverFactory(const std::string& driver,
                                                                     const std::string& vmm_path,
                                                                     const std::string& kernel,
                                                                     const std::string& initrd,
                                                                     boost::asio::io_context& io);
// Checks the channel's kind, path and address are what the driver promises.
void ExpectAgentChannelKind(const std::string& driver, const AgentChannel& channel,
                            const std::string& socket_dir);
bool SupportsHotplug(const std::string& driver);
// The REST path of the request that boots the VM ("" when the command line boots it).
std::string BootRequestPath(const std::string& driver);

}  // namespace kuasar::vmm
