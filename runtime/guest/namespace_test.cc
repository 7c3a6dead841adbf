// vmm-task as the fake VMM runs it: PID 1 of new pid/mount/uts/ipc namespaces on the
// host (`unshare --fork --pid --mount --uts --ipc` + --init namespace). It must reap
// every orphan, keep its mounts and hostname to itself, and run containers.
#include <dirent.h>
#include <google/protobuf/empty.pb.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/status_matchers.h"
#include "runtime/guest/sandbox_ttrpc.h"
#include "runtime/guest/testing/container_fixture.h"

namespace kuasar::guest {
namespace {

using testing::AgentContainerTest;
using testing::AgentProcessOptions;
using testing::Call;

struct Proc {
  pid_t pid;
  char state;
  std::string comm;
};

// The children of `parent` as the host's /proc shows them.
std::vector<Proc> ChildrenOf(pid_t parent) {
  std::vector<Proc> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    auto stat = ReadSmallFile(absl::StrFormat("/proc/%d/stat", pid), 4096);
    if (!stat.ok()) continue;
    // "pid (comm) S ppid ...": comm may hold spaces, so split after the last ')'.
    size_t open = stat->find('('), close = stat->rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::vector<std::string> f = absl::StrSplit(stat->substr(close + 2), ' ');
    int ppid = 0;
    if (f.size() < 2 || !absl::SimpleAtoi(f[1], &ppid) || ppid != parent) continue;
    out.push_back({pid, f[0][0], stat->substr(open + 1, close - open - 1)});
  }
  ::closedir(d);
  return out;
}

class NamespaceModeTest : public AgentContainerTest {
 protected:
  AgentProcessOptions options() override {
    if (::access("/usr/bin/unshare", X_OK) != 0) return {};
    AgentProcessOptions o;
    o.init = "namespace";
    o.wrapper = {"/usr/bin/unshare", "--fork", "--pid", "--mount", "--uts", "--ipc",
                 "--kill-child"};
    return o;
  }
  void SetUp() override {
    if (::access("/usr/bin/unshare", X_OK) != 0) GTEST_SKIP() << "needs unshare (util-linux)";
    AgentContainerTest::SetUp();
  }
  absl::StatusOr<agentpb::ExecVMProcessResponse> Exec(std::vector<std::string> args) {
    agentpb::ExecVMProcessRequest req;
    for (auto& a : args) req.add_args(a);
    return Call<agentpb::ExecVMProcessResponse>(agent_->client(), kSandboxServiceName,
                                                "ExecVMProcess", req);
  }
};

TEST_F(NamespaceModeTest, IsPidOneAndReapsOrphans) {
  auto pid = Exec({"/bin/sh", "-c", "echo $PPID"});
  ASSERT_OK(pid) << agent_->Log();
  EXPECT_EQ(pid->stdout(), "1\n") << "the agent is PID 1 of its namespace";

  auto agent_pid = agent_->AgentPid();
  ASSERT_OK(agent_pid);
  // The shell exits at once; its background sleep is orphaned to the agent.
  auto r = Exec({"/bin/sh", "-c", "sleep 0.5 >/dev/null 2>&1 & exit 0"});
  ASSERT_OK(r);
  EXPECT_EQ(r->exit_code(), 0);
  bool adopted = false;
  for (const Proc& p : ChildrenOf(*agent_pid)) adopted |= p.comm == "sleep";
  EXPECT_TRUE(adopted) << "the orphan should now be the agent's child";
  absl::SleepFor(absl::Milliseconds(1500));
  for (const Proc& p : ChildrenOf(*agent_pid)) {
    EXPECT_NE(p.state, 'Z') << "zombie left under the agent: pid " << p.pid << " " << p.comm;
  }
}

TEST_F(NamespaceModeTest, HostnameAndMountsStayInside) {
  char host_name[256] = {};
  ::gethostname(host_name, sizeof(host_name) - 1);
  agentpb::SetupSandboxRequest req;
  req.set_hostname("ns-guest");
  ASSERT_OK(
      Call<google::protobuf::Empty>(agent_->client(), kSandboxServiceName, "SetupSandbox", req));
  auto r = Exec({"/bin/cat", "/proc/sys/kernel/hostname"});
  ASSERT_OK(r);
  EXPECT_EQ(r->stdout(), "ns-guest\n");
  char after[256] = {};
  ::gethostname(after, sizeof(after) - 1);
  EXPECT_STREQ(host_name, after);
  // Its fresh /proc shows its own pid namespace: a handful of processes, not the host's.
  r = Exec({"/bin/ls", "/proc/1/"});
  ASSERT_OK(r);
  auto self = Exec({"/bin/readlink", "/proc/1/exe"});
  ASSERT_OK(self);
  EXPECT_TRUE(absl::EndsWith(self->stdout(), "vmm-task\n")) << self->stdout();
}

TEST_F(NamespaceModeTest, RunsContainers) {
  ASSERT_OK(Create("nsc", {"/testinit", "print", "inside"}, "", "kuasar-stream://nsc-out"))
      << agent_->Log();
  ASSERT_OK(Start("nsc"));
  auto code = Wait("nsc");
  ASSERT_OK(code);
  EXPECT_EQ(*code, 0u);
  auto out = ReadStream("nsc-out");
  ASSERT_OK(out);
  EXPECT_EQ(*out, "inside\n");
  ASSERT_OK(Delete("nsc"));
}

}  // namespace
}  // namespace kuasar::guest
