// GuestPaths through a real TaskBridge against a fake agent: Task.Create reaches the agent
// with the guest's bundle and stream URIs, the pumps carry stdout and stdin between host
// FIFOs and ReadStream/WriteStream, CloseIO(stdin) is left to the pump, Delete removes the
// shared copy. Needs root (the bundle's rootfs is bound into the shared dir).
#include "runtime/sandboxers/vmm/backend/guest_paths.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "containerd/task/v3/shim.pb.h"
#include "google/protobuf/empty.pb.h"
#include "kuasar/agent/v1/agent.pb.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/sandboxers/vmm/backend/shared_bundle.h"
#include "runtime/ttrpc/server.h"
#include "runtime/ttrpc/server_stream.h"

namespace kuasar {
namespace {

namespace task = containerd::task::v3;
constexpr char kTask[] = "containerd.task.v3.Task";

// What the agent saw.
struct Seen {
  std::mutex mu;
  task::CreateTaskRequest create;
  task::ExecProcessRequest exec;
  task::CloseIORequest close_io;
  std::map<std::string, std::string> written;  // token -> stdin bytes
  std::map<std::string, bool> ended;           // token -> stream ended cleanly
};

class GuestPathsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (bind mounts)";
    auto unary = [this](const char* method, auto parse_into, std::string response) {
      ASSERT_OK(agent_.RegisterBlockingUnary(
          kTask, method,
          [this, parse_into, response](const ttrpc::CallContext&,
                                       const std::string& req) -> absl::StatusOr<std::string> {
            std::lock_guard<std::mutex> l(seen_.mu);
            parse_into(req);
            return response;
          }));
    };
    task::CreateTaskResponse created;
    created.set_pid(42);
    unary(
        "Create", [this](const std::string& r) { seen_.create.ParseFromString(r); },
        created.SerializeAsString());
    unary(
        "Exec", [this](const std::string& r) { seen_.exec.ParseFromString(r); }, "");
    unary(
        "CloseIO", [this](const std::string& r) { seen_.close_io.ParseFromString(r); }, "");
    unary(
        "Delete", [](const std::string&) {}, task::DeleteResponse().SerializeAsString());
    ASSERT_OK(agent_.RegisterStream("kuasar.agent.v1.Sandbox", "ReadStream",
                                    {.server_streaming = true},
                                    [](ttrpc::ServerStream& s) -> absl::StatusOr<std::string> {
                                      agent::v1::ReadStreamRequest req;
                                      std::string first;
                                      if (!s.Recv(&first) || !req.ParseFromString(first))
                                        return std::string();
                                      agent::v1::StreamChunk c;
                                      c.set_data("out of " + req.token() + "\n");
                                      (void)s.SendMessage(c);
                                      return std::string();
                                    }));
    ASSERT_OK(agent_.RegisterStream("kuasar.agent.v1.Sandbox", "WriteStream",
                                    {.client_streaming = true},
                                    [this](ttrpc::ServerStream& s) -> absl::StatusOr<std::string> {
                                      agent::v1::StreamChunk c;
                                      std::string token;
                                      while (true) {
                                        auto more = s.RecvMessage(&c);
                                        if (!more.ok() || !*more) break;
                                        if (!c.token().empty()) token = c.token();
                                        std::lock_guard<std::mutex> l(seen_.mu);
                                        seen_.written[token] += c.data();
                                      }
                                      std::lock_guard<std::mutex> l(seen_.mu);
                                      seen_.ended[token] = true;
                                      return google::protobuf::Empty().SerializeAsString();
                                    }));
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ASSERT_OK(agent_.ServeConnection(UniqueFd(sv[0])));
    std::filesystem::create_directories(dir_.Sub("shared"));
    std::filesystem::create_directories(dir_.Sub("bundle/rootfs/bin"));
    std::ofstream(dir_.Sub("bundle/rootfs/bin/sh")) << "#!\n";
    std::ofstream(dir_.Sub("bundle/config.json")) << R"({"root": {"path": "rootfs"}})";
    for (const char* f : {"stdin", "stdout"}) ASSERT_EQ(::mkfifo(dir_.Sub(f).c_str(), 0600), 0);
    paths_ = std::make_unique<GuestPaths>(dir_.Sub("shared"), "/run/kuasar/shared");
    auto bridge = TaskBridge::Start(io_, UniqueFd(sv[1]), dir_.Sub("task.sock"), paths_.get());
    ASSERT_OK(bridge);
    bridge_ = *bridge;
    paths_->SetAgentSocket(dir_.Sub("task.sock"));
    io_thread_ = std::thread([this] { io_.run(); });
    auto c = ttrpc::Client::Connect(dir_.Sub("task.sock"));
    ASSERT_OK(c);
    client_ = std::move(*c);
  }
  void TearDown() override {
    if (!io_thread_.joinable()) return;
    client_.reset();
    paths_->Shutdown();
    bridge_->Close();
    (void)agent_.Shutdown(std::chrono::milliseconds(100));
    work_.reset();
    io_.stop();
    io_thread_.join();
    (void)UnmountTree(dir_.path());
  }

  // Everything until EOF from a FIFO opened as containerd does (O_RDONLY|O_NONBLOCK).
  static std::string ReadToEof(int fd) {
    std::string out;
    char buf[256];
    for (int i = 0; i < 500; ++i) {
      pollfd p{fd, POLLIN, 0};
      ::poll(&p, 1, 10);
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n > 0) out.append(buf, static_cast<size_t>(n));
      if (n == 0 && (p.revents & POLLHUP)) break;
    }
    return out;
  }

  TempDir dir_{"kgp"};
  ttrpc::Server agent_;
  Seen seen_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  std::thread io_thread_;
  std::unique_ptr<GuestPaths> paths_;
  std::shared_ptr<TaskBridge> bridge_;
  std::unique_ptr<ttrpc::Client> client_;
};

TEST_F(GuestPathsTest, CreateStdioCloseIoAndDelete) {
  UniqueFd out(::open(dir_.Sub("stdout").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(out.valid());
  task::CreateTaskRequest create;
  create.set_id("c1");
  create.set_bundle(dir_.Sub("bundle"));
  create.set_stdin(dir_.Sub("stdin"));
  create.set_stdout(dir_.Sub("stdout"));
  create.set_stderr(dir_.Sub("stdout"));  // one FIFO for both: one stream
  ASSERT_OK(client_->Call(kTask, "Create", create.SerializeAsString()));
  std::string in_uri, out_uri;
  {
    std::lock_guard<std::mutex> l(seen_.mu);
    EXPECT_EQ(seen_.create.bundle(), "/run/kuasar/shared/c1");
    EXPECT_EQ(seen_.create.rootfs_size(), 0);
    in_uri = seen_.create.stdin();
    out_uri = seen_.create.stdout();
    EXPECT_EQ(seen_.create.stderr(), out_uri);
  }
  ASSERT_TRUE(out_uri.starts_with("kuasar-stream://")) << out_uri;
  ASSERT_TRUE(in_uri.starts_with("kuasar-stream://") && in_uri != out_uri) << in_uri;
  EXPECT_TRUE(std::filesystem::exists(dir_.Sub("shared/c1/rootfs/bin/sh")));
  EXPECT_TRUE(std::filesystem::exists(dir_.Sub("shared/c1/config.json")));

  // stdout: the agent's stream, then EOF once it ended.
  EXPECT_EQ(ReadToEof(out.get()), "out of " + out_uri.substr(16) + "\n");

  // stdin: containerd writes and closes; CloseIO(stdin) is not passed on as such.
  UniqueFd in(::open(dir_.Sub("stdin").c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(in.valid());
  ASSERT_EQ(::write(in.get(), "typed", 5), 5);
  in.Reset();
  task::CloseIORequest close;
  close.set_id("c1");
  close.set_stdin(true);
  ASSERT_OK(client_->Call(kTask, "CloseIO", close.SerializeAsString()));
  const std::string token = in_uri.substr(16);
  for (int i = 0; i < 500; ++i) {
    std::lock_guard<std::mutex> l(seen_.mu);
    if (seen_.ended[token]) break;
    ::usleep(10000);
  }
  {
    std::lock_guard<std::mutex> l(seen_.mu);
    EXPECT_EQ(seen_.written[token], "typed");
    EXPECT_TRUE(seen_.ended[token]);
    EXPECT_EQ(seen_.close_io.id(), "c1");
    EXPECT_FALSE(seen_.close_io.stdin());
  }

  // An exec's stdout goes the same way; a process with no FIFOs is left alone.
  ASSERT_EQ(::mkfifo(dir_.Sub("exec-out").c_str(), 0600), 0);
  UniqueFd exec_out(::open(dir_.Sub("exec-out").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  task::ExecProcessRequest exec;
  exec.set_id("c1");
  exec.set_exec_id("e1");
  exec.set_stdout(dir_.Sub("exec-out"));
  ASSERT_OK(client_->Call(kTask, "Exec", exec.SerializeAsString()));
  std::string exec_uri;
  {
    std::lock_guard<std::mutex> l(seen_.mu);
    exec_uri = seen_.exec.stdout();
    EXPECT_TRUE(seen_.exec.stdin().empty());
  }
  EXPECT_EQ(ReadToEof(exec_out.get()), "out of " + exec_uri.substr(16) + "\n");

  // Deleting the container removes its shared copy and its pumps.
  task::DeleteRequest del;
  del.set_id("c1");
  ASSERT_OK(client_->Call(kTask, "Delete", del.SerializeAsString()));
  for (int i = 0; i < 500 && paths_->pump_count() > 0; ++i) ::usleep(10000);
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("shared/c1")));
  EXPECT_TRUE(std::filesystem::exists(dir_.Sub("bundle/rootfs/bin/sh")));
  auto mounts = MountPointsUnder(dir_.path());
  ASSERT_OK(mounts);
  EXPECT_TRUE(mounts->empty());
}

TEST_F(GuestPathsTest, RefusesWhatTheGuestCannotUse) {
  task::CreateTaskRequest create;
  create.set_id("c2");
  create.set_bundle(dir_.Sub("bundle"));
  create.set_stdout("binary:///usr/bin/logger");
  EXPECT_FALSE(client_->Call(kTask, "Create", create.SerializeAsString()).ok());
  create.set_stdout("file://relative/log");  // a log file must be named by its full path
  EXPECT_FALSE(client_->Call(kTask, "Create", create.SerializeAsString()).ok());
  create.set_stdout("");
  create.set_stdin("file:///tmp/in");  // stdin is a FIFO or nothing
  EXPECT_FALSE(client_->Call(kTask, "Create", create.SerializeAsString()).ok());
  create.set_stdin("");
  create.set_stdout("");
  create.set_bundle(dir_.Sub("no-bundle"));
  EXPECT_FALSE(client_->Call(kTask, "Create", create.SerializeAsString()).ok());
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("shared/c2")));
  paths_->Shutdown();
  create.set_bundle(dir_.Sub("bundle"));
  EXPECT_THAT(client_->Call(kTask, "Create", create.SerializeAsString()),
              kuasar::testing::StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace kuasar
