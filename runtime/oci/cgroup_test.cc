#include "runtime/oci/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <limits>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/str_format.h"
#include "io/containerd/cgroups/v1/metrics.pb.h"
#include "io/containerd/cgroups/v2/metrics.pb.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/child_process.h"
#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/base/unique_fd.h"

namespace kuasar {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace v1 = ::io::containerd::cgroups::v1;
namespace v2 = ::io::containerd::cgroups::v2;

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

void Put(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  ASSERT_OK(WriteFileAtomically(path, text, 0644));
}

bool IsDir(const std::string& p) { return std::filesystem::is_directory(p); }

std::string P(const absl::StatusOr<std::string>& s) { return s.ok() ? *s : s.status().ToString(); }

// A fake host: mountinfo, /proc/self/cgroup and cgroup trees under a temp dir.
class FakeHostTest : public ::testing::Test {
 protected:
  CgroupSources V2Sources() {
    Put(dir_.Sub("mountinfo"),
        absl::StrFormat("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
                        "41 22 0:38 / %s rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n",
                        dir_.Sub("cg")));
    Put(dir_.Sub("self"), "0::/system.slice/kuasar.service\n");
    Put(dir_.Sub("cg/cgroup.controllers"), "cpu io memory pids hugetlb\n");
    std::filesystem::create_directories(dir_.Sub("hugepages/hugepages-2048kB"));
    CgroupSources s;
    s.mountinfo = dir_.Sub("mountinfo");
    s.self_cgroup = dir_.Sub("self");
    s.unified_root = dir_.Sub("cg");
    s.partitions = dir_.Sub("partitions");
    s.hugepages = dir_.Sub("hugepages");
    return s;
  }
  CgroupSources V1Sources() {
    CgroupSources s = V2Sources();
    std::string d = dir_.path();
    // cpu and cpuacct co-mounted; memory mounted from a non-root cgroup (a container
    // without a cgroup namespace); a hybrid-style cgroup2 mount beside them.
    Put(dir_.Sub("mountinfo"),
        absl::StrFormat(
            "31 22 0:28 / %s/v1 rw - tmpfs tmpfs rw\n"
            "32 31 0:29 / %s/v1/cpu,cpuacct rw,relatime shared:1 - cgroup cgroup rw,cpu,cpuacct\n"
            "33 31 0:30 /docker/abc %s/v1/mem\\040ory rw - cgroup cgroup rw,memory\n"
            "34 31 0:31 / %s/v1/pids rw - cgroup cgroup rw,pids\n"
            "35 31 0:32 / %s/v1/blkio rw - cgroup cgroup rw,blkio\n"
            "36 31 0:33 / %s/v1/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
            "37 31 0:34 / %s/v1/unified rw - cgroup2 cgroup2 rw\n",
            d, d, d, d, d, d, d));
    Put(dir_.Sub("self"), "4:memory:/docker/abc/inner\n2:cpu,cpuacct:/\n0::/\n");
    s.unified_root = dir_.Sub("v1");  // no cgroup.controllers there: v1
    return s;
  }
  TempDir dir_{"kcg"};
};

TEST_F(FakeHostTest, V2Paths) {
  auto h = CgroupHierarchy::Load(V2Sources());
  ASSERT_OK(h);
  EXPECT_EQ(h->mode(), CgroupMode::kV2);
  EXPECT_EQ(P(h->ControllerPath("memory", "/k8s.io/abc")), dir_.Sub("cg/k8s.io/abc"));
  EXPECT_EQ(P(h->ControllerPath("cpu", "//k8s.io/./abc/")), dir_.Sub("cg/k8s.io/abc"));
  EXPECT_EQ(P(h->ControllerPath("memory", "pod1/c1")),
            dir_.Sub("cg/system.slice/kuasar.service/pod1/c1"));
  EXPECT_THAT(h->ControllerPath("memory", "/k8s.io/../etc"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("..")));
  EXPECT_THAT(h->ControllerPath("memory", "/"), StatusIs(absl::StatusCode::kInvalidArgument));

  ASSERT_OK(h->Create("/k8s.io/abc"));  // subtree_control writes fail on a fake: logged only
  EXPECT_TRUE(IsDir(dir_.Sub("cg/k8s.io/abc")));
  ASSERT_OK(h->Remove("/k8s.io"));
  EXPECT_FALSE(IsDir(dir_.Sub("cg/k8s.io")));
  EXPECT_OK(h->Remove("/k8s.io"));  // already gone
  EXPECT_THAT(h->ReadMetrics("/k8s.io/abc"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(FakeHostTest, V2Metrics) {
  auto h = CgroupHierarchy::Load(V2Sources());
  ASSERT_OK(h);
  std::string c = dir_.Sub("cg/k8s.io/abc/");
  Put(c + "memory.stat", "anon 1000\nfile 2000\ninactive_file 500\npgfault 7\npgmajfault 1\n");
  Put(c + "memory.current", "3000\n");
  Put(c + "memory.max", "max\n");
  Put(c + "memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n");
  Put(c + "cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_throttled 4\n");
  Put(c + "cpu.pressure",
      "some avg10=1.50 avg60=0.00 avg300=0.00 total=42\nfull avg10=0.00 avg60=0.00 "
      "avg300=0.00 total=7\n");
  Put(c + "pids.current", "3\n");
  Put(c + "pids.max", "max\n");
  Put(c + "io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
  Put(c + "hugetlb.2MB.max", "max\n");
  Put(c + "hugetlb.2MB.events", "max 3\n");
  auto sample = h->ReadMetrics("/k8s.io/abc");
  ASSERT_OK(sample);
  EXPECT_EQ(sample->type_url, "io.containerd.cgroups.v2.Metrics");
  v2::Metrics m;
  ASSERT_TRUE(m.ParseFromString(sample->value));
  EXPECT_EQ(m.pids().current(), 3u);
  EXPECT_EQ(m.pids().limit(), kMax);
  EXPECT_EQ(m.cpu().usage_usec(), 1500u);
  EXPECT_EQ(m.cpu().user_usec(), 1000u);
  EXPECT_EQ(m.cpu().system_usec(), 500u);
  EXPECT_EQ(m.cpu().nr_throttled(), 4u);
  EXPECT_DOUBLE_EQ(m.cpu().psi().some().avg10(), 1.5);
  EXPECT_EQ(m.cpu().psi().some().total(), 42u);
  EXPECT_EQ(m.cpu().psi().full().total(), 7u);
  EXPECT_EQ(m.memory().anon(), 1000u);
  EXPECT_EQ(m.memory().inactive_file(), 500u);
  EXPECT_EQ(m.memory().pgfault(), 7u);
  EXPECT_EQ(m.memory().usage(), 3000u);
  EXPECT_EQ(m.memory().usage_limit(), kMax);
  EXPECT_FALSE(m.memory().has_psi());  // no memory.pressure in the fake
  EXPECT_EQ(m.memory_events().oom_kill(), 1u);
  EXPECT_EQ(m.memory_events().max(), 2u);
  ASSERT_EQ(m.io().usage_size(), 1);
  EXPECT_EQ(m.io().usage(0).major(), 8u);
  EXPECT_EQ(m.io().usage(0).wbytes(), 20u);
  EXPECT_EQ(m.io().usage(0).wios(), 2u);
  ASSERT_EQ(m.hugetlb_size(), 1);
  EXPECT_EQ(m.hugetlb(0).pagesize(), "2MB");
  EXPECT_EQ(m.hugetlb(0).max(), kMax);
  EXPECT_EQ(m.hugetlb(0).failcnt(), 3u);
}

TEST_F(FakeHostTest, V1PathsAndMetrics) {
  auto h = CgroupHierarchy::Load(V1Sources());
  ASSERT_OK(h);
  EXPECT_EQ(h->mode(), CgroupMode::kV1);
  std::string v = dir_.Sub("v1");
  EXPECT_EQ(P(h->ControllerPath("cpuacct", "/k8s.io/x")), v + "/cpu,cpuacct/k8s.io/x");
  EXPECT_EQ(P(h->ControllerPath("memory", "/k8s.io/x")), v + "/mem ory/k8s.io/x");
  EXPECT_EQ(P(h->ControllerPath("memory", "rel/x")), v + "/mem ory/inner/rel/x");
  EXPECT_EQ(P(h->ControllerPath("name=systemd", "/x")), v + "/systemd/x");
  EXPECT_THAT(h->ControllerPath("hugetlb", "/x"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("hugetlb")));

  ASSERT_OK(h->Create("/k8s.io/x"));
  EXPECT_TRUE(IsDir(v + "/cpu,cpuacct/k8s.io/x"));
  EXPECT_TRUE(IsDir(v + "/mem ory/k8s.io/x"));
  EXPECT_TRUE(IsDir(v + "/pids/k8s.io/x"));
  EXPECT_FALSE(IsDir(v + "/blkio/k8s.io/x"));  // crun makes the others

  std::string mem = v + "/mem ory/k8s.io/x/", cpu = v + "/cpu,cpuacct/k8s.io/x/";
  Put(mem + "memory.stat",
      "cache 10\nrss 20\npgfault 5\nswap 0\ntotal_rss 40\ntotal_pgmajfault 2\n"
      "total_inactive_file 100\nhierarchical_memsw_limit 9\nbogus line here\n");
  Put(mem + "memory.usage_in_bytes", "4096\n");
  Put(mem + "memory.max_usage_in_bytes", "8192\n");
  Put(mem + "memory.failcnt", "1\n");
  Put(mem + "memory.limit_in_bytes", "9223372036854771712\n");
  Put(mem + "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
  Put(cpu + "cpuacct.usage", "123456789\n");
  Put(cpu + "cpuacct.usage_percpu", "100 200 \n");
  Put(cpu + "cpuacct.stat", "user 100\nsystem 50\n");
  Put(cpu + "cpu.stat", "nr_periods 7\nnr_throttled 2\nthrottled_time 99\n");
  Put(v + "/pids/k8s.io/x/pids.current", "2\n");
  Put(v + "/pids/k8s.io/x/pids.max", "max\n");
  Put(v + "/blkio/k8s.io/x/blkio.throttle.io_service_bytes_recursive",
      "8:0 Read 100\n8:0 Write 200\nTotal 300\n");
  Put(dir_.Sub("partitions"), "major minor  #blocks  name\n\n   8        0   1000 sda\n");
  auto sample = h->ReadMetrics("/k8s.io/x");
  ASSERT_OK(sample);
  EXPECT_EQ(sample->type_url, "io.containerd.cgroups.v1.Metrics");
  v1::Metrics m;
  ASSERT_TRUE(m.ParseFromString(sample->value));
  EXPECT_EQ(m.cpu().usage().total(), 123456789u);
  EXPECT_THAT(m.cpu().usage().per_cpu(), ElementsAre(100u, 200u));
  const uint64_t hz = static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
  EXPECT_EQ(m.cpu().usage().user(), 100 * 1'000'000'000ull / hz);
  EXPECT_EQ(m.cpu().usage().kernel(), 50 * 1'000'000'000ull / hz);
  EXPECT_EQ(m.cpu().throttling().periods(), 7u);
  EXPECT_EQ(m.cpu().throttling().throttled_periods(), 2u);
  EXPECT_EQ(m.cpu().throttling().throttled_time(), 99u);
  EXPECT_EQ(m.memory().cache(), 10u);
  EXPECT_EQ(m.memory().pg_fault(), 5u);
  EXPECT_EQ(m.memory().total_rss(), 40u);
  EXPECT_EQ(m.memory().total_pg_maj_fault(), 2u);
  EXPECT_EQ(m.memory().total_inactive_file(), 100u);
  EXPECT_EQ(m.memory().hierarchical_swap_limit(), 9u);
  EXPECT_EQ(m.memory().usage().usage(), 4096u);
  EXPECT_EQ(m.memory().usage().max(), 8192u);
  EXPECT_EQ(m.memory().usage().limit(), 9223372036854771712u);
  EXPECT_EQ(m.memory().swap().usage(), 0u);  // no memsw files: left empty
  EXPECT_EQ(m.memory_oom_control().oom_kill(), 3u);
  EXPECT_EQ(m.pids().current(), 2u);
  EXPECT_EQ(m.pids().limit(), 0u);  // "max" reads 0 in v1 Metrics, as containerd's
  ASSERT_EQ(m.blkio().io_service_bytes_recursive_size(), 2);
  EXPECT_EQ(m.blkio().io_service_bytes_recursive(1).op(), "Write");
  EXPECT_EQ(m.blkio().io_service_bytes_recursive(1).value(), 200u);
  EXPECT_EQ(m.blkio().io_service_bytes_recursive(1).device(), "/dev/sda");

  Put(cpu + "cpuacct.usage", "garbage\n");
  EXPECT_THAT(h->ReadMetrics("/k8s.io/x"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("cpuacct.usage")));
  EXPECT_THAT(h->ReadMetrics("/nope"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nope")));
}

TEST_F(FakeHostTest, NoCgroupsMounted) {
  CgroupSources s = V2Sources();
  Put(s.mountinfo, "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n");
  s.unified_root = dir_.Sub("nowhere");
  EXPECT_THAT(CgroupHierarchy::Load(s), StatusIs(absl::StatusCode::kFailedPrecondition));
}

// The real host (v1 or v2): a cgroup with a running process.
class HostCgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (creates cgroups)";
    auto h = CgroupHierarchy::Host();
    ASSERT_OK(h);
    host_ = *h;
  }
  void TearDown() override {
    if (host_) {
      EXPECT_OK(host_->Remove(parent_));
    }
  }
  const CgroupHierarchy* host_ = nullptr;
  std::string parent_ = absl::StrFormat("/kuasar-test-%d", ::getpid());
};

TEST_F(HostCgroupTest, MetricsOfARunningProcess) {
  std::string path = parent_ + "/c1";
  ASSERT_OK(CreateCgroup(path));
  ASSERT_OK(CreateCgroup(path));  // idempotent
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd r(p[0]), w(p[1]);
  SpawnOptions o;
  o.stdin_fd = r.get();
  // Waits for us to move it, then spends some CPU and memory inside the cgroup.
  auto child = ChildProcess::Spawn(
      {"/bin/sh", "-c",
       "read x; x=$(head -c 2000000 /dev/zero | tr '\\0' a); i=0; "
       "while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 30"},
      o);
  ASSERT_OK(child);
  ASSERT_OK(AddProcess(path, child->pid()));
  w.Reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  auto sample = ReadMetrics(path);
  ASSERT_OK(sample);
  if (host_->mode() == CgroupMode::kV1) {
    EXPECT_EQ(sample->type_url, kCgroupV1MetricsType);
    v1::Metrics m;
    ASSERT_TRUE(m.ParseFromString(sample->value));
    EXPECT_GT(m.cpu().usage().total(), 0u);
    EXPECT_GT(m.cpu().usage().per_cpu_size(), 0);
    EXPECT_GT(m.memory().usage().usage(), 0u);
    EXPECT_GT(m.memory().usage().limit(), 0u);
    EXPECT_GT(m.memory().total_pg_fault(), 0u);
    EXPECT_GE(m.pids().current(), 1u);
  } else {
    EXPECT_EQ(sample->type_url, kCgroupV2MetricsType);
    v2::Metrics m;
    ASSERT_TRUE(m.ParseFromString(sample->value));
    EXPECT_GT(m.cpu().usage_usec(), 0u);
    EXPECT_GT(m.memory().usage(), 0u);
    EXPECT_GE(m.pids().current(), 1u);
  }
  // Busy while the process lives; removable once it is gone.
  EXPECT_THAT(host_->Remove(path, absl::Milliseconds(50)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("tasks")));
  ASSERT_OK(child->Signal(SIGKILL));
  ASSERT_OK(child->Wait());
  ASSERT_OK(RemoveCgroup(path));
  auto mem = ControllerPath("memory", path);
  ASSERT_OK(mem);
  EXPECT_FALSE(IsDir(*mem));
  EXPECT_OK(RemoveCgroup(path));
  EXPECT_THAT(ReadMetrics(path), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(HostCgroupTest, AddProcessToMissingCgroup) {
  EXPECT_THAT(AddProcess(parent_ + "/missing", ::getpid()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing")));
}

}  // namespace
}  // namespace kuasar
