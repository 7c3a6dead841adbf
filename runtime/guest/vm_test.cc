// vmm-task as PID 1 of a real VM: the guest image (fixtures/guest, kuasar-guest-image,
// with this agent) booted by QEMU (TCG unless /dev/kvm works), its agent reached on the
// virtio-serial port's host socket exactly as the qemu driver wires it. Checks the VM
// duties (mounts, cgroup2, modules), SetupSandbox for real, a container with
// kuasar-stream:// stdout, reconnecting to the port, and power-off on Shutdown.
#include <fcntl.h>
#include <google/protobuf/empty.pb.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "containerd/task/v3/shim.pb.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/child_process.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/guest/sandbox_ttrpc.h"
#include "runtime/guest/testing/agent_process.h"

namespace kuasar::guest {
namespace {

using google::protobuf::Empty;
using testing::Call;
namespace task = containerd::task::v3;
constexpr char kTask[] = "containerd.task.v3.Task";

class VmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string image = KUASAR_GUEST_DIR;
    if (auto missing = ReadSmallFile(image + "/MISSING"); missing.ok()) {
      GTEST_SKIP() << "no guest image: " << *missing;
    }
    if (::access((image + "/initramfs.img").c_str(), R_OK) != 0) {
      GTEST_SKIP() << "no guest image in " << image << " (ninja kuasar-guest-image)";
    }
    auto manifest = ReadSmallFile(image + "/manifest.txt");
    if (!manifest.ok() || !absl::StrContains(*manifest, "vmm-task")) {
      GTEST_SKIP() << "the guest image carries the placeholder agent, not vmm-task";
    }
    if (::access("/usr/bin/qemu-system-x86_64", X_OK) != 0) GTEST_SKIP() << "needs QEMU";
    // Flag, value pairs, one or two to a line.
    // clang-format off
    std::vector<std::string> argv = {
        "/usr/bin/qemu-system-x86_64", "-machine", "q35,accel=tcg", "-smp", "1", "-m", "512M",
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-kernel", image + "/vmlinuz", "-initrd", image + "/initramfs.img",
        "-append", "console=ttyS0 panic=-1 reboot=k quiet tsc=reliable task.log_level=debug",
        "-chardev", "file,id=console0,path=" + dir_.Sub("console.log"),
        "-serial", "chardev:console0",
        "-device", "virtio-serial-pci,id=vserial0",
        "-chardev", absl::StrFormat("socket,id=agent0,path=%s,server=on,wait=off", Agent()),
        "-device", "virtserialport,bus=vserial0.0,chardev=agent0,name=agent.channel.0"};
    // clang-format on
    auto vm = ChildProcess::Spawn(argv);
    ASSERT_OK(vm);
    vm_.emplace(std::move(*vm));
    ASSERT_OK(Connect(absl::Seconds(120)));
  }
  void TearDown() override {
    client_.reset();
    if (vm_ && !vm_->reaped()) {
      (void)vm_->Signal(SIGKILL);
      (void)vm_->Wait();
    }
    if (HasFailure()) std::cerr << "console:\n" << Console();
  }
  std::string Agent() const { return dir_.Sub("agent.sock"); }
  std::string Console() const {
    auto c = ReadSmallFile(dir_.Sub("console.log"), 4 << 20);
    return c.ok() ? *c : "";
  }
  // Dials the port's host socket until the agent answers Check.
  absl::Status Connect(absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      auto c = ttrpc::Client::Connect(Agent());
      if (c.ok()) {
        auto r = Call<agentpb::CheckResponse>(**c, kSandboxServiceName, "Check",
                                              agentpb::CheckRequest(), absl::Seconds(2));
        if (r.ok()) {
          check_ = *r;
          client_ = std::move(*c);
          return absl::OkStatus();
        }
      }
      absl::SleepFor(absl::Milliseconds(250));
    }
    return absl::DeadlineExceededError("the agent did not answer:\n" + Console());
  }
  absl::StatusOr<agentpb::ExecVMProcessResponse> Exec(std::vector<std::string> args) {
    agentpb::ExecVMProcessRequest req;
    for (auto& a : args) req.add_args(a);
    return Call<agentpb::ExecVMProcessResponse>(*client_, kSandboxServiceName, "ExecVMProcess", req,
                                                absl::Seconds(60));
  }

  TempDir dir_{"kuasar-vm"};
  std::optional<ChildProcess> vm_;
  std::unique_ptr<ttrpc::Client> client_;
  agentpb::CheckResponse check_;
};

TEST_F(VmTest, BootsSetsUpRunsAContainerAndPowersOff) {
  EXPECT_GT(check_.ready_after_boot_ns(), 0);
  EXPECT_GE(check_.uptime_ns(), check_.ready_after_boot_ns());
  auto mounts = Exec({"/bin/cat", "/proc/mounts"});
  ASSERT_OK(mounts);
  for (const char* m : {"devtmpfs /dev ", "/dev/pts devpts", "/dev/shm tmpfs", "/run tmpfs",
                        "/tmp tmpfs", "/sys/fs/cgroup cgroup2"}) {
    EXPECT_THAT(mounts->stdout(), ::testing::HasSubstr(m));
  }
  auto modules = Exec({"/bin/cat", "/proc/modules"});
  ASSERT_OK(modules);
  EXPECT_THAT(modules->stdout(), ::testing::HasSubstr("virtio_console"));

  agentpb::SetupSandboxRequest setup;
  setup.set_sandbox_id("vm1");
  setup.set_hostname("vm-guest");
  setup.add_dns_servers("10.96.0.10");
  setup.mutable_sysctls()->insert({"net.ipv4.ip_forward", "1"});
  ASSERT_OK(Call<Empty>(*client_, kSandboxServiceName, "SetupSandbox", setup));
  auto host = Exec({"/bin/cat", "/proc/sys/kernel/hostname", "/proc/sys/net/ipv4/ip_forward",
                    "/etc/resolv.conf"});
  ASSERT_OK(host);
  EXPECT_EQ(host->stdout(), "vm-guest\n1\nnameserver 10.96.0.10\n");
  agentpb::SyncClockRequest clock;
  clock.set_unix_nanos(absl::ToUnixNanos(absl::Now()));
  ASSERT_OK(Call<Empty>(*client_, kSandboxServiceName, "SyncClock", clock));

  // A container whose rootfs is a read-only bind of the guest's own root.
  nlohmann::json spec = {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"args", {"/testinit", "print", "hello from the VM"}},
        {"cwd", "/"},
        {"env", {"PATH=/bin:/sbin"}},
        {"user", {{"uid", 0}, {"gid", 0}}}}},
      {"root", {{"path", "rootfs"}, {"readonly", true}}},
      {"mounts", {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}}}},
      {"linux",
       {{"namespaces", {{{"type", "mount"}}, {{"type", "pid"}}}},
        {"cgroupsPath", "/kuasar-test/vmc"}}}};
  ASSERT_OK(Exec({"/bin/mkdir", "-p", "/run/b/vmc/rootfs"}));
  ASSERT_OK(
      Exec({"/bin/sh", "-c", "printf '%s' \"$1\" > /run/b/vmc/config.json", "sh", spec.dump()}));
  task::CreateTaskRequest create;
  create.set_id("vmc");
  create.set_bundle("/run/b/vmc");
  create.set_stdout("kuasar-stream://vmc-out");
  auto* m = create.add_rootfs();
  m->set_type("bind");
  m->set_source("/");
  m->add_options("rbind");
  m->add_options("ro");
  ASSERT_OK(Call<task::CreateTaskResponse>(*client_, kTask, "Create", create, absl::Seconds(60)));
  task::StartRequest start;
  start.set_id("vmc");
  ASSERT_OK(Call<task::StartResponse>(*client_, kTask, "Start", start, absl::Seconds(60)));
  task::WaitRequest wait;
  wait.set_id("vmc");
  auto waited = Call<task::WaitResponse>(*client_, kTask, "Wait", wait, absl::Seconds(60));
  ASSERT_OK(waited);
  EXPECT_EQ(waited->exit_status(), 0u);
  agentpb::ReadStreamRequest rs;
  rs.set_token("vmc-out");
  auto stream = client_->NewStream(kSandboxServiceName, "ReadStream", {.server_streaming = true},
                                   rs.SerializeAsString());
  ASSERT_OK(stream);
  std::string out;
  agentpb::StreamChunk chunk;
  while (*(*stream)->RecvMessage(&chunk)) out += chunk.data();
  EXPECT_EQ(out, "hello from the VM\n");
  task::DeleteRequest del;
  del.set_id("vmc");
  ASSERT_OK(Call<task::DeleteResponse>(*client_, kTask, "Delete", del, absl::Seconds(60)));

  // The host end goes away and comes back: the agent reopens the port and serves again.
  client_.reset();
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_OK(Connect(absl::Seconds(30)));

  ASSERT_OK(Call<Empty>(*client_, kSandboxServiceName, "Shutdown", Empty()));
  auto exited = vm_->WaitFor(std::chrono::seconds(60));
  ASSERT_OK(exited) << "the VM did not power off";
  EXPECT_EQ(ExitCodeFromWaitStatus(*exited), 0);
}

}  // namespace
}  // namespace kuasar::guest
