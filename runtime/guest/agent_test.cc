// The vmm-task binary in --init none, driven over ttrpc like the sandboxer drives it:
// the Sandbox API without containers, and every kind of channel.
#include <google/protobuf/empty.pb.h>
#include <gtest/gtest.h>
#include <linux/vm_sockets.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/status_matchers.h"
#include "runtime/guest/sandbox_ttrpc.h"
#include "runtime/guest/testing/agent_process.h"

namespace kuasar::guest {
namespace {

using google::protobuf::Empty;
using ::kuasar::testing::StatusIs;
using testing::AgentProcess;
using testing::Call;
using ::testing::HasSubstr;
constexpr const char* kSvc = kSandboxServiceName;

int ExitCode(const absl::StatusOr<int>& code) { return code.ok() ? *code : -1; }

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = testing::AgentUnavailableReason();
    if (!why.empty()) GTEST_SKIP() << why;
    auto a = AgentProcess::Start({});
    ASSERT_OK(a);
    agent_ = std::move(*a);
  }
  void TearDown() override {
    if (agent_) {
      auto code = agent_->Stop();
      EXPECT_EQ(ExitCode(code), 0) << agent_->Log();
    }
  }
  absl::StatusOr<agentpb::ExecVMProcessResponse> Exec(std::vector<std::string> args,
                                                      int64_t timeout_ms = 0,
                                                      std::vector<std::string> env = {}) {
    agentpb::ExecVMProcessRequest req;
    for (auto& a : args) req.add_args(a);
    for (auto& e : env) req.add_env(e);
    req.set_timeout_ms(timeout_ms);
    return Call<agentpb::ExecVMProcessResponse>(agent_->client(), kSvc, "ExecVMProcess", req);
  }
  std::unique_ptr<AgentProcess> agent_;
};

TEST_F(AgentTest, Check) {
  auto r = Call<agentpb::CheckResponse>(agent_->client(), kSvc, "Check", agentpb::CheckRequest());
  ASSERT_OK(r);
  utsname u{};
  ASSERT_EQ(::uname(&u), 0);
  EXPECT_EQ(r->kernel_release(), u.release);
  EXPECT_FALSE(r->agent_version().empty());
  EXPECT_GT(r->uptime_ns(), 0);
  EXPECT_GT(r->ready_after_boot_ns(), 0);
  auto later =
      Call<agentpb::CheckResponse>(agent_->client(), kSvc, "Check", agentpb::CheckRequest());
  EXPECT_GT(later->uptime_ns(), r->uptime_ns());
}

TEST_F(AgentTest, UnknownMethodIsUnimplemented) {
  EXPECT_THAT(Call<Empty>(agent_->client(), kSvc, "Reboot", Empty()),
              StatusIs(absl::StatusCode::kUnimplemented));
}

TEST_F(AgentTest, SetupSandboxWritesPodFilesUnderTheStateDir) {
  char before[256] = {};
  ::gethostname(before, sizeof(before) - 1);
  agentpb::SetupSandboxRequest req;
  req.set_sandbox_id("pod-1");
  req.set_hostname("guest-web-0");
  req.add_dns_servers("10.96.0.10");
  req.add_dns_searches("default.svc.cluster.local");
  req.add_dns_options("ndots:5");
  req.add_hosts("10.1.2.3\tregistry.local");
  ASSERT_OK(Call<Empty>(agent_->client(), kSvc, "SetupSandbox", req));
  std::string etc = agent_->state_dir() + "/etc";
  EXPECT_EQ(*ReadSmallFile(etc + "/hostname"), "guest-web-0\n");
  EXPECT_THAT(*ReadSmallFile(etc + "/hosts"), HasSubstr("10.1.2.3\tregistry.local\n"));
  EXPECT_EQ(*ReadSmallFile(etc + "/resolv.conf"),
            "nameserver 10.96.0.10\nsearch default.svc.cluster.local\noptions ndots:5\n");
  char after[256] = {};
  ::gethostname(after, sizeof(after) - 1);
  EXPECT_STREQ(before, after) << "--init none must leave the host's hostname alone";
  // Sysctls would be the host's here: refused.
  req.mutable_sysctls()->insert({"net.ipv4.ip_forward", "1"});
  EXPECT_THAT(Call<Empty>(agent_->client(), kSvc, "SetupSandbox", req),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  req.clear_sysctls();
  req.set_hostname("bad host");
  EXPECT_THAT(Call<Empty>(agent_->client(), kSvc, "SetupSandbox", req),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(AgentTest, ExecVMProcessCapturesOutputExitCodeAndEnv) {
  auto r = Exec({KUASAR_TESTINIT_PATH, "env", "GREETING"}, 0, {"GREETING=hello from the guest"});
  ASSERT_OK(r);
  EXPECT_EQ(r->exit_code(), 0);
  EXPECT_EQ(r->stdout(), "hello from the guest\n");
  r = Exec({KUASAR_TESTINIT_PATH, "stderr", "oops"});
  ASSERT_OK(r);
  EXPECT_EQ(r->stderr(), "oops\n");
  r = Exec({KUASAR_TESTINIT_PATH, "exit", "7"});
  ASSERT_OK(r);
  EXPECT_EQ(r->exit_code(), 7);
  EXPECT_THAT(Exec({"/nonexistent/program"}), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(AgentTest, ExecVMProcessOutputIsCappedAtOneMiB) {
  auto r = Exec({"head", "-c", "3000000", "/dev/zero"});
  ASSERT_OK(r);
  EXPECT_EQ(r->exit_code(), 0);
  EXPECT_EQ(r->stdout().size(), size_t{1} << 20);
}

TEST_F(AgentTest, ExecVMProcessTimeoutKillsIt) {
  absl::Time start = absl::Now();
  EXPECT_THAT(Exec({KUASAR_TESTINIT_PATH, "sleep", "30"}, 300),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("killed")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  // The agent is fine afterwards.
  auto r = Exec({KUASAR_TESTINIT_PATH, "print", "still here"});
  ASSERT_OK(r);
  EXPECT_EQ(r->stdout(), "still here\n");
}

TEST_F(AgentTest, ShutdownStopsTheAgent) {
  ASSERT_OK(Call<Empty>(agent_->client(), kSvc, "Shutdown", Empty()));
  auto code = agent_->Stop(absl::Seconds(10));
  EXPECT_EQ(ExitCode(code), 0);
  EXPECT_NE(::access(agent_->socket_path().c_str(), F_OK), 0) << "socket removed at exit";
  agent_.reset();
}

TEST(AgentChannelTest, ServeFdOverASocketpair) {
  std::string why = testing::AgentUnavailableReason();
  if (!why.empty()) GTEST_SKIP() << why;
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd ours(sv[0]), theirs(sv[1]);
  testing::AgentProcessOptions o;
  o.listen_unix = false;
  o.inherit_fds = {{theirs.get(), 3}};
  o.extra_args = {"--serve-fd", "3"};
  auto agent = AgentProcess::Start(o);
  ASSERT_OK(agent);
  theirs.Reset();
  auto client = ttrpc::Client::FromFd(std::move(ours));
  ASSERT_OK(client);
  auto r = Call<agentpb::CheckResponse>(**client, kSvc, "Check", agentpb::CheckRequest());
  ASSERT_OK(r) << (*agent)->Log();
  (*client).reset();
  EXPECT_EQ(ExitCode((*agent)->Stop()), 0);
}

TEST(AgentChannelTest, Vsock) {
  std::string why = testing::AgentUnavailableReason();
  if (!why.empty()) GTEST_SKIP() << why;
  UniqueFd probe(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe) GTEST_SKIP() << "no AF_VSOCK in this kernel";
  const uint32_t port = 20000 + static_cast<uint32_t>(::getpid() % 20000);
  testing::AgentProcessOptions o;
  o.extra_args = {"--listen", absl::StrFormat("vsock:%d", port)};
  auto agent = AgentProcess::Start(o);
  if (!agent.ok() && absl::StrContains(agent.status().message(), "vsock")) {
    GTEST_SKIP() << "vsock listen unavailable: " << agent.status().message();
  }
  ASSERT_OK(agent);
  sockaddr_vm addr{};
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = VMADDR_CID_LOCAL;
  addr.svm_port = port;
  UniqueFd s(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    (void)(*agent)->Stop();
    GTEST_SKIP() << "no vsock loopback here (modprobe vsock_loopback): " << std::strerror(err);
  }
  auto client = ttrpc::Client::FromFd(std::move(s));
  ASSERT_OK(client);
  ASSERT_OK(Call<agentpb::CheckResponse>(**client, kSvc, "Check", agentpb::CheckRequest()));
  (*client).reset();
  EXPECT_EQ(ExitCode((*agent)->Stop()), 0);
}

}  // namespace
}  // namespace kuasar::guest
