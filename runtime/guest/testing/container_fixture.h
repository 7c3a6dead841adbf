// Test support: a vmm-task (any mode) plus helpers to run the test rootfs's containers
// through it over the Task API, with host FIFOs or kuasar-stream:// stdio.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "containerd/task/v3/shim.pb.h"
#include "runtime/guest/testing/agent_process.h"

namespace kuasar::guest::testing {

namespace task = containerd::task::v3;

inline constexpr char kTaskService[] = "containerd.task.v3.Task";

// Why containers cannot run here ("" if they can): root, runc/crun, the test rootfs.
std::string ContainersUnavailableReason();

class AgentContainerTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Starts the agent; SetUp does it with `options()` unless a test wants its own.
  void StartAgent(AgentProcessOptions options);

  // Writes a bundle for `args` and creates the container (stdio as given).
  absl::StatusOr<task::CreateTaskResponse> Create(const std::string& id,
                                                  const std::vector<std::string>& args,
                                                  const std::string& stdin_uri = "",
                                                  const std::string& stdout_uri = "",
                                                  const std::string& stderr_uri = "");
  absl::Status Start(const std::string& id, const std::string& exec_id = "");
  absl::StatusOr<uint32_t> Wait(const std::string& id, const std::string& exec_id = "");
  absl::Status Delete(const std::string& id, const std::string& exec_id = "");
  absl::Status Exec(const std::string& id, const std::string& exec_id,
                    const std::vector<std::string>& args, const std::string& stdout_uri = "");
  absl::Status Kill(const std::string& id, int signal, const std::string& exec_id = "");
  // ReadStream(token) to its end.
  absl::StatusOr<std::string> ReadStream(const std::string& token);
  // WriteStream(token): the chunks, then the end of the stream.
  absl::Status WriteStream(const std::string& token, const std::vector<std::string>& chunks);

  virtual AgentProcessOptions options() { return {}; }

  std::unique_ptr<AgentProcess> agent_;
  std::unique_ptr<TempDir> bundles_;
  std::vector<std::string> created_;
};

}  // namespace kuasar::guest::testing
