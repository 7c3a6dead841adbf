// Containers of the test rootfs run through vmm-task (--init none) over the Task API, as
// containerd and the vmm sandboxer drive them: host FIFOs, kuasar-stream:// stdio read and
// written through the Sandbox service, exit codes, exec, kill.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <future>

#include "runtime/base/status_matchers.h"
#include "runtime/base/unique_fd.h"
#include "runtime/guest/testing/container_fixture.h"

namespace kuasar::guest {
namespace {

using ::kuasar::testing::StatusIs;
using testing::AgentContainerTest;
using testing::Call;
using testing::kTaskService;
namespace task = containerd::task::v3;

std::string DrainFifo(int fd, absl::Duration timeout) {
  std::string out;
  absl::Time deadline = absl::Now() + timeout;
  char buf[4096];
  while (absl::Now() < deadline) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0 && !out.empty()) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return out;
}

using ContainerTest = AgentContainerTest;

TEST_F(ContainerTest, HostFifoStdoutAndExitCodes) {
  std::string fifo = bundles_->Sub("c1.stdout");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  UniqueFd reader(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  auto created = Create("c1", {"/testinit", "print", "hello", "guest"}, "", fifo);
  ASSERT_OK(created) << agent_->Log();
  EXPECT_GT(created->pid(), 0u);
  ASSERT_OK(Start("c1"));
  auto code = Wait("c1");
  ASSERT_OK(code);
  EXPECT_EQ(*code, 0u);
  EXPECT_EQ(DrainFifo(reader.get(), absl::Seconds(5)), "hello guest\n");
  ASSERT_OK(Delete("c1"));

  ASSERT_OK(Create("c2", {"/testinit", "exit", "42"}));
  ASSERT_OK(Start("c2"));
  code = Wait("c2");
  ASSERT_OK(code);
  EXPECT_EQ(*code, 42u);
  ASSERT_OK(Delete("c2"));
}

TEST_F(ContainerTest, StreamStdinAndStdout) {
  ASSERT_OK(Create("echo", {"/testinit", "echo-stdin"}, "kuasar-stream://echo-in",
                   "kuasar-stream://echo-out"))
      << agent_->Log();
  task::StateRequest sreq;
  sreq.set_id("echo");
  auto state = Call<task::StateResponse>(agent_->client(), kTaskService, "State", sreq);
  ASSERT_OK(state);
  EXPECT_EQ(state->stdout(), "kuasar-stream://echo-out");
  ASSERT_OK(Start("echo"));
  std::future<absl::StatusOr<std::string>> out =
      std::async(std::launch::async, [this] { return ReadStream("echo-out"); });
  ASSERT_OK(WriteStream("echo-in", {"ping\n", std::string(200 << 10, 'z'), "pong\n"}));
  auto code = Wait("echo");  // stdin's end reached the container: it exits
  ASSERT_OK(code);
  EXPECT_EQ(*code, 0u);
  auto got = out.get();
  ASSERT_OK(got);
  EXPECT_EQ(*got, "ping\n" + std::string(200 << 10, 'z') + "pong\n");
  ASSERT_OK(Delete("echo"));
}

TEST_F(ContainerTest, LateReaderStillGetsTheOutput) {
  ASSERT_OK(Create("late", {"/testinit", "print", "written before anyone read"}, "",
                   "kuasar-stream://late-out", "kuasar-stream://late-out"));
  ASSERT_OK(Start("late"));
  auto code = Wait("late");
  ASSERT_OK(code);
  EXPECT_EQ(*code, 0u);
  auto got = ReadStream("late-out");
  ASSERT_OK(got);
  EXPECT_EQ(*got, "written before anyone read\n");
  ASSERT_OK(Delete("late"));
  // The token is free again once its container is gone.
  ASSERT_OK(Create("late2", {"/testinit", "exit", "0"}, "", "kuasar-stream://late-out"));
}

TEST_F(ContainerTest, ExecWithStreamAndKill) {
  ASSERT_OK(Create("svc", {"/testinit", "sleep", "inf"}));
  ASSERT_OK(Start("svc"));
  ASSERT_OK(Exec("svc", "e1", {"/testinit", "print", "from exec"}, "kuasar-stream://e1-out"));
  ASSERT_OK(Start("svc", "e1"));
  auto got = ReadStream("e1-out");
  ASSERT_OK(got);
  EXPECT_EQ(*got, "from exec\n");
  auto code = Wait("svc", "e1");
  ASSERT_OK(code);
  EXPECT_EQ(*code, 0u);
  ASSERT_OK(Delete("svc", "e1"));

  ASSERT_OK(Exec("svc", "e2", {"/testinit", "exit", "3"}));
  ASSERT_OK(Start("svc", "e2"));
  code = Wait("svc", "e2");
  ASSERT_OK(code);
  EXPECT_EQ(*code, 3u);

  ASSERT_OK(Kill("svc", SIGTERM));
  code = Wait("svc");
  ASSERT_OK(code);
  EXPECT_EQ(*code, 143u);  // testinit exits 128+SIGTERM
  ASSERT_OK(Delete("svc"));
  EXPECT_THAT(Kill("svc", SIGKILL), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(ContainerTest, AgentStopKillsRunningContainers) {
  ASSERT_OK(Create("forever", {"/testinit", "sleep", "inf"}));
  ASSERT_OK(Start("forever"));
  task::WaitRequest wreq;
  wreq.set_id("forever");
  std::promise<absl::StatusOr<task::WaitResponse>> waited;
  ttrpc::CallMethodAsync<task::WaitResponse>(
      agent_->client(), kTaskService, "Wait", wreq,
      {.timeout = std::chrono::seconds(30), .metadata = {}},
      [&](absl::StatusOr<task::WaitResponse> r) { waited.set_value(std::move(r)); });
  auto pid = agent_->AgentPid();
  ASSERT_OK(pid);
  ASSERT_EQ(::kill(*pid, SIGTERM), 0);
  auto w = waited.get_future().get();
  ASSERT_OK(w) << "a parked Wait is answered before the agent exits\n" << agent_->Log();
  EXPECT_EQ(w->exit_status(), 137u);
  auto stopped = agent_->Stop();
  ASSERT_OK(stopped);
  EXPECT_EQ(*stopped, 0) << agent_->Log();
  created_.clear();
  agent_.reset();
}

}  // namespace
}  // namespace kuasar::guest
