#include "runtime/oci/cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <limits>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "io/containerd/cgroups/v1/metrics.pb.h"
#include "io/containerd/cgroups/v2/metrics.pb.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/unique_fd.h"

#include <spdlog/spdlog.h>

namespace kuasar {
namespace {

namespace v1 = ::io::containerd::cgroups::v1;
namespace v2 = ::io::containerd::cgroups::v2;
namespace fs = std::filesystem;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

constexpr uint64_t kAllOnes = std::numeric_limits<uint64_t>::max();
// The v1 controllers a container cgroup is made in (crun adds the others itself).
constexpr const char* kV1Created[] = {"memory", "cpu", "cpuacct", "pids"};
constexpr const char* kV1Known[] = {"cpu",     "cpuacct", "cpuset",  "memory",     "devices",
                                    "freezer", "net_cls", "net_prio", "perf_event", "blkio",
                                    "pids",    "hugetlb", "rdma",     "misc"};

absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(absl::string_view s) {
  auto octal = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && octal(s[i + 1]) && octal(s[i + 2]) &&
        octal(s[i + 3])) {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 +
                                      (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// containerd's parseUint: "max" means `max_value`, negatives clamp to 0.
bool ParseValue(absl::string_view s, uint64_t max_value, uint64_t* out) {
  s = absl::StripAsciiWhitespace(s);
  if (s == "max") {
    *out = max_value;
    return true;
  }
  if (absl::SimpleAtoi(s, out)) return true;
  if (s.size() > 1 && s[0] == '-' && s.find_first_not_of("0123456789", 1) == s.npos) {
    *out = 0;
    return true;
  }
  return false;
}

// Reads cgroup files, remembering the first error so a metrics pass reads straight
// through. Optional files may be missing (a controller feature the kernel lacks).
class FileReader {
 public:
  absl::StatusOr<std::string> Text(const std::string& path, bool optional) {
    absl::StatusOr<std::string> text = ReadSmallFile(path, 1 << 20);
    if (!text.ok() && !(optional && absl::IsNotFound(text.status()))) Fail(text.status());
    return text;
  }
  uint64_t Uint(const std::string& path, uint64_t max_value = 0, bool optional = false) {
    absl::StatusOr<std::string> text = Text(path, optional);
    uint64_t v = 0;
    if (text.ok() && !ParseValue(*text, max_value, &v)) {
      Fail(absl::DataLossError(absl::StrFormat("%s: not a number: \"%s\"", path, *text)));
    }
    return v;
  }
  // "key value" lines into the uint64 fields of `msg` named like the keys (after
  // `rename`); unknown keys are skipped. False if the file is missing.
  bool KeyValues(const std::string& path, Message* msg, bool optional,
                 std::string (*rename)(absl::string_view) = nullptr) {
    absl::StatusOr<std::string> text = Text(path, optional);
    if (!text.ok()) return false;
    const auto* desc = msg->GetDescriptor();
    for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
      std::vector<absl::string_view> kv = absl::StrSplit(line, ' ', absl::SkipEmpty());
      uint64_t v;
      if (kv.size() != 2 || !ParseValue(kv[1], 0, &v)) continue;
      const FieldDescriptor* f =
          desc->FindFieldByName(rename ? rename(kv[0]) : std::string(kv[0]));
      if (f && !f->is_repeated() && f->cpp_type() == FieldDescriptor::CPPTYPE_UINT64) {
        msg->GetReflection()->SetUInt64(msg, f, v);
      }
    }
    return true;
  }
  const absl::Status& status() const { return status_; }

 private:
  void Fail(const absl::Status& s) {
    if (status_.ok()) status_ = s;
  }
  absl::Status status_;
};

// memory.stat (v1) keys that the proto spells differently.
std::string RenameV1MemoryKey(absl::string_view key) {
  bool total = absl::ConsumePrefix(&key, "total_");
  std::string name(key);
  if (key == "pgpgin") name = "pg_pg_in";
  if (key == "pgpgout") name = "pg_pg_out";
  if (key == "pgfault") name = "pg_fault";
  if (key == "pgmajfault") name = "pg_maj_fault";
  if (key == "hierarchical_memsw_limit") name = "hierarchical_swap_limit";
  return total ? "total_" + name : name;
}

std::string RenameV1ThrottleKey(absl::string_view key) {
  if (key == "nr_periods") return "periods";
  if (key == "nr_throttled") return "throttled_periods";
  return std::string(key);
}

// *.pressure: "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" and a "full" line.
bool ReadPsi(FileReader& r, const std::string& path, v2::PSIStats* psi) {
  absl::StatusOr<std::string> text = r.Text(path, true);
  if (!text.ok()) return false;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.empty() || (f[0] != "some" && f[0] != "full")) continue;
    v2::PSIData* d = f[0] == "some" ? psi->mutable_some() : psi->mutable_full();
    for (size_t i = 1; i < f.size(); ++i) {
      std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(f[i], '=');
      double x = 0;
      uint64_t u = 0;
      if (kv.first == "total" && absl::SimpleAtoi(kv.second, &u)) d->set_total(u);
      if (!absl::SimpleAtod(kv.second, &x)) continue;
      if (kv.first == "avg10") d->set_avg10(x);
      if (kv.first == "avg60") d->set_avg60(x);
      if (kv.first == "avg300") d->set_avg300(x);
    }
  }
  return true;
}

// /sys/kernel/mm/hugepages/hugepages-2048kB -> "2MB", as containerd names them.
std::vector<std::string> HugePageSizes(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string file = e.path().filename().string();
    absl::string_view name = file;
    uint64_t kb;
    if (!absl::ConsumePrefix(&name, "hugepages-") || !absl::ConsumeSuffix(&name, "kB") ||
        !absl::SimpleAtoi(name, &kb)) {
      continue;
    }
    if (kb >= (1u << 20)) {
      out.push_back(absl::StrFormat("%dGB", kb >> 20));
    } else if (kb >= 1024) {
      out.push_back(absl::StrFormat("%dMB", kb >> 10));
    } else {
      out.push_back(absl::StrFormat("%dKB", kb));
    }
  }
  return out;
}

absl::Status WriteCgroupFile(const std::string& path, absl::string_view data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open", path);
  if (::write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
    return ErrnoStatus(errno, absl::StrFormat("write \"%s\" to", data), path);
  }
  return absl::OkStatus();
}

// v2: lets the children of `dir` use every controller `dir` has (as runc does).
void EnableSubtreeControllers(const std::string& dir) {
  FileReader r;
  absl::StatusOr<std::string> have = r.Text(dir + "/cgroup.controllers", true);
  absl::StatusOr<std::string> on = r.Text(dir + "/cgroup.subtree_control", true);
  if (!have.ok() || !on.ok()) return;
  std::set<absl::string_view> enabled =
      absl::StrSplit(*on, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  for (absl::string_view c : absl::StrSplit(*have, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
    if (enabled.count(c)) continue;
    absl::Status s = WriteCgroupFile(dir + "/cgroup.subtree_control", absl::StrFormat("+%s", c));
    if (!s.ok()) {
      spdlog::warn("op=cgroup_enable controller={} dir={} err=\"{}\"", c, dir, s.message());
    }
  }
}

absl::Status RemoveTree(const std::string& dir, absl::Time deadline) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::error_code ec2;
    if (e.is_directory(ec2) && !e.is_symlink(ec2)) {
      RETURN_IF_ERROR(RemoveTree(e.path(), deadline));
    }
  }
  while (::rmdir(dir.c_str()) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    if (errno != EBUSY) return ErrnoStatus(errno, "rmdir", dir);
    if (absl::Now() > deadline) {
      return absl::FailedPreconditionError(
          absl::StrFormat("rmdir %s: cgroup still has tasks", dir));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CgroupHierarchy> CgroupHierarchy::Load(const CgroupSources& sources) {
  CgroupHierarchy h;
  h.sources_ = sources;
  ASSIGN_OR_RETURN(std::string mountinfo, ReadSmallFile(sources.mountinfo));
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    size_t sep = 6;
    while (sep < f.size() && f[sep] != "-") ++sep;
    if (sep + 3 >= f.size()) continue;
    Mount m{Unescape(f[4]), Unescape(f[3])};
    if (f[sep + 1] == "cgroup2") {
      if (h.unified_.dir.empty() || m.dir == sources.unified_root) h.unified_ = m;
    } else if (f[sep + 1] == "cgroup") {
      for (absl::string_view opt : absl::StrSplit(f[sep + 3], ',')) {
        bool known = absl::StartsWith(opt, "name=");
        for (const char* c : kV1Known) known |= opt == c;
        if (known && !h.v1_.count(opt)) h.v1_.emplace(std::string(opt), m);
      }
    }
  }
  if (absl::StatusOr<std::string> self = ReadSmallFile(sources.self_cgroup); self.ok()) {
    for (absl::string_view line : absl::StrSplit(*self, '\n', absl::SkipEmpty())) {
      std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(':', 2));
      if (f.size() != 3) continue;
      if (f[1].empty()) h.own_[""] = std::string(f[2]);
      for (absl::string_view c : absl::StrSplit(f[1], ',', absl::SkipEmpty())) {
        h.own_[std::string(c)] = std::string(f[2]);
      }
    }
  }
  if (Exists(sources.unified_root + "/cgroup.controllers")) {
    h.mode_ = CgroupMode::kV2;
    if (h.unified_.dir.empty()) h.unified_ = {sources.unified_root, "/"};
  } else if (h.v1_.empty()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("no cgroup hierarchy is mounted (read %s)", sources.mountinfo));
  }
  return h;
}

absl::StatusOr<const CgroupHierarchy*> CgroupHierarchy::Host() {
  // Never destroyed: used from any thread until exit.
  static const auto* host = new absl::StatusOr<CgroupHierarchy>(Load());
  if (!host->ok()) return host->status();
  return &**host;
}

absl::StatusOr<std::string> CgroupHierarchy::Resolve(const Mount& mount, std::string_view own,
                                               std::string_view cgroups_path) const {
  std::string rel;
  for (absl::string_view part : absl::StrSplit(Absl(cgroups_path), '/', absl::SkipEmpty())) {
    if (part == "..") {
      return absl::InvalidArgumentError(
          absl::StrFormat("cgroups path \"%s\" must not contain \"..\"", cgroups_path));
    }
    if (part != ".") rel += absl::StrFormat("/%s", part);
  }
  if (rel.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat("empty cgroups path \"%s\"", cgroups_path));
  }
  if (cgroups_path[0] == '/') return mount.dir + rel;
  // Relative: below our own cgroup, seen from the mount's root.
  absl::string_view base = Absl(own);
  if (mount.root != "/" && absl::StartsWith(base, mount.root)) {
    base.remove_prefix(mount.root.size());
  }
  std::string out = mount.dir;
  for (absl::string_view part : absl::StrSplit(base, '/', absl::SkipEmpty())) {
    out += absl::StrFormat("/%s", part);
  }
  return out + rel;
}

absl::StatusOr<std::string> CgroupHierarchy::ControllerPath(std::string_view controller,
                                                      std::string_view cgroups_path) const {
  auto own = [&](std::string_view key) -> std::string_view {
    auto it = own_.find(key);
    return it == own_.end() ? std::string_view("/") : std::string_view(it->second);
  };
  if (mode_ == CgroupMode::kV2) return Resolve(unified_, own(""), cgroups_path);
  auto it = v1_.find(controller);
  if (it == v1_.end()) {
    return absl::NotFoundError(absl::StrFormat("cgroup controller %s is not mounted", controller));
  }
  return Resolve(it->second, own(controller), cgroups_path);
}

absl::Status CgroupHierarchy::Create(std::string_view cgroups_path) const {
  if (mode_ == CgroupMode::kV2) {
    ASSIGN_OR_RETURN(std::string dir, ControllerPath("", cgroups_path));
    std::string at = unified_.dir;
    for (absl::string_view part : absl::StrSplit(absl::string_view(dir).substr(at.size()), '/',
                                                absl::SkipEmpty())) {
      EnableSubtreeControllers(at);
      at += absl::StrFormat("/%s", part);
      if (::mkdir(at.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoStatus(errno, "mkdir", at);
    }
    return absl::OkStatus();
  }
  for (const char* c : kV1Created) {
    if (!v1_.count(c)) continue;
    ASSIGN_OR_RETURN(std::string dir, ControllerPath(c, cgroups_path));
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return ErrnoStatus(ec.value(), "mkdir", dir);
  }
  return absl::OkStatus();
}

absl::Status CgroupHierarchy::AddProcess(std::string_view cgroups_path, pid_t pid) const {
  std::set<std::string> dirs;
  if (mode_ == CgroupMode::kV2) {
    ASSIGN_OR_RETURN(std::string dir, ControllerPath("", cgroups_path));
    dirs.insert(dir);
  }
  for (const char* c : kV1Created) {
    if (mode_ == CgroupMode::kV2 || !v1_.count(c)) continue;
    ASSIGN_OR_RETURN(std::string dir, ControllerPath(c, cgroups_path));
    dirs.insert(dir);
  }
  for (const std::string& dir : dirs) {
    RETURN_IF_ERROR(Annotate(WriteCgroupFile(dir + "/cgroup.procs", absl::StrFormat("%d", pid)),
                             absl::StrFormat("add pid %d to cgroup %s", pid, cgroups_path)));
  }
  return absl::OkStatus();
}

absl::Status CgroupHierarchy::Remove(std::string_view cgroups_path, absl::Duration timeout) const {
  std::set<std::string> dirs;
  if (mode_ == CgroupMode::kV2) {
    ASSIGN_OR_RETURN(std::string dir, ControllerPath("", cgroups_path));
    dirs.insert(dir);
  }
  for (const auto& [c, m] : v1_) {
    if (mode_ == CgroupMode::kV2) break;
    ASSIGN_OR_RETURN(std::string dir, ControllerPath(c, cgroups_path));
    dirs.insert(dir);
  }
  absl::Time deadline = absl::Now() + timeout;
  absl::Status first;
  for (const std::string& dir : dirs) {
    absl::Status s = RemoveTree(dir, deadline);
    if (first.ok()) first = s;
  }
  return first;
}

absl::StatusOr<MetricSample> CgroupHierarchy::ReadMetrics(std::string_view cgroups_path) const {
  MetricSample sample;
  if (mode_ == CgroupMode::kV2) {
    ASSIGN_OR_RETURN(std::string dir, ControllerPath("", cgroups_path));
    if (!Exists(dir)) {
      return absl::NotFoundError(absl::StrFormat("cgroup %s: no %s", cgroups_path, dir));
    }
    sample.type_url = std::string(kCgroupV2MetricsType);
    ASSIGN_OR_RETURN(sample.value, MetricsV2(dir));
  } else {
    sample.type_url = std::string(kCgroupV1MetricsType);
    ASSIGN_OR_RETURN(sample.value, MetricsV1(cgroups_path));
  }
  return sample;
}

absl::StatusOr<std::string> CgroupHierarchy::MetricsV1(std::string_view cgroups_path) const {
  v1::Metrics m;
  FileReader r;
  bool found = false;
  auto dir_of = [&](const char* controller, std::string* dir) {
    absl::StatusOr<std::string> d = ControllerPath(controller, cgroups_path);
    if (!d.ok() || !Exists(*d)) return false;
    *dir = *d;
    return found = true;
  };
  std::string d;
  if (dir_of("cpuacct", &d)) {
    v1::CPUUsage* u = m.mutable_cpu()->mutable_usage();
    u->set_total(r.Uint(d + "/cpuacct.usage"));
    if (absl::StatusOr<std::string> t = r.Text(d + "/cpuacct.usage_percpu", true); t.ok()) {
      for (absl::string_view f : absl::StrSplit(*t, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
        uint64_t v = 0;
        ParseValue(f, 0, &v);
        u->add_per_cpu(v);
      }
    }
    v1::CPUUsage ticks;  // cpuacct.stat counts USER_HZ ticks: "user N", "system N"
    r.KeyValues(d + "/cpuacct.stat", &ticks, false,
                [](absl::string_view k) { return std::string(k == "system" ? "kernel" : k); });
    const uint64_t hz = static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
    u->set_user(ticks.user() * 1'000'000'000 / hz);
    u->set_kernel(ticks.kernel() * 1'000'000'000 / hz);
  }
  if (dir_of("cpu", &d)) {
    r.KeyValues(d + "/cpu.stat", m.mutable_cpu()->mutable_throttling(), true, RenameV1ThrottleKey);
  }
  if (dir_of("memory", &d)) {
    v1::MemoryStat* mem = m.mutable_memory();
    r.KeyValues(d + "/memory.stat", mem, false, RenameV1MemoryKey);
    r.KeyValues(d + "/memory.oom_control", m.mutable_memory_oom_control(), true);
    const std::pair<const char*, v1::MemoryEntry*> entries[] = {
        {"memory.", mem->mutable_usage()},
        {"memory.memsw.", mem->mutable_swap()},
        {"memory.kmem.", mem->mutable_kernel()},
        {"memory.kmem.tcp.", mem->mutable_kernel_tcp()}};
    for (const auto& [prefix, e] : entries) {
      std::string p = d + "/" + prefix;
      bool optional = e != mem->mutable_usage();
      if (optional && !Exists(p + "usage_in_bytes")) continue;
      e->set_usage(r.Uint(p + "usage_in_bytes"));
      e->set_max(r.Uint(p + "max_usage_in_bytes"));
      e->set_failcnt(r.Uint(p + "failcnt"));
      e->set_limit(r.Uint(p + "limit_in_bytes"));
    }
  }
  if (dir_of("pids", &d)) {
    m.mutable_pids()->set_current(r.Uint(d + "/pids.current"));
    m.mutable_pids()->set_limit(r.Uint(d + "/pids.max", 0));  // "max" is 0 in v1 Metrics
  }
  if (dir_of("blkio", &d)) {
    std::map<std::pair<uint64_t, uint64_t>, std::string> devices;
    if (absl::StatusOr<std::string> parts = ReadSmallFile(sources_.partitions); parts.ok()) {
      for (absl::string_view line : absl::StrSplit(*parts, '\n', absl::SkipEmpty())) {
        std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
        uint64_t ma, mi;
        if (f.size() == 4 && absl::SimpleAtoi(f[0], &ma) && absl::SimpleAtoi(f[1], &mi)) {
          devices[{ma, mi}] = absl::StrFormat("/dev/%s", f[3]);
        }
      }
    }
    v1::BlkIOStat* b = m.mutable_blkio();
    int entries = 0;
    auto read = [&](const std::string& name, auto* list) {
      absl::StatusOr<std::string> t = r.Text(d + "/blkio." + name, true);
      if (!t.ok()) return false;
      for (absl::string_view line : absl::StrSplit(*t, '\n', absl::SkipEmpty())) {
        std::vector<absl::string_view> f =
            absl::StrSplit(line, absl::ByAnyChar(" :"), absl::SkipEmpty());
        uint64_t ma, mi, v;
        if (f.size() < 3 || !absl::SimpleAtoi(f[0], &ma) || !absl::SimpleAtoi(f[1], &mi) ||
            !absl::SimpleAtoi(f.back(), &v)) {
          continue;  // "Total N"
        }
        v1::BlkIOEntry* e = list->Add();
        e->set_major(ma);
        e->set_minor(mi);
        e->set_value(v);
        if (f.size() == 4) e->set_op(std::string(f[2]));
        if (auto it = devices.find({ma, mi}); it != devices.end()) e->set_device(it->second);
        ++entries;
      }
      return true;
    };
    if (Exists(d + "/blkio.io_serviced_recursive")) {  // CFQ
      read("sectors_recursive", b->mutable_sectors_recursive());
      read("io_service_bytes_recursive", b->mutable_io_service_bytes_recursive());
      read("io_serviced_recursive", b->mutable_io_serviced_recursive());
      read("io_queued_recursive", b->mutable_io_queued_recursive());
      read("io_service_time_recursive", b->mutable_io_service_time_recursive());
      read("io_wait_time_recursive", b->mutable_io_wait_time_recursive());
      read("io_merged_recursive", b->mutable_io_merged_recursive());
      read("time_recursive", b->mutable_io_time_recursive());
    }
    if (entries == 0) {  // no CFQ: the throttle policy's counters, as containerd falls back
      if (!read("throttle.io_serviced_recursive", b->mutable_io_serviced_recursive())) {
        read("throttle.io_serviced", b->mutable_io_serviced_recursive());
      }
      if (!read("throttle.io_service_bytes_recursive", b->mutable_io_service_bytes_recursive())) {
        read("throttle.io_service_bytes", b->mutable_io_service_bytes_recursive());
      }
    }
  }
  if (dir_of("hugetlb", &d)) {
    for (const std::string& size : HugePageSizes(sources_.hugepages)) {
      std::string p = absl::StrFormat("%s/hugetlb.%s.", d, size);
      if (!Exists(p + "usage_in_bytes")) continue;
      v1::HugetlbStat* h = m.add_hugetlb();
      h->set_pagesize(size);
      h->set_usage(r.Uint(p + "usage_in_bytes"));
      h->set_max(r.Uint(p + "max_usage_in_bytes"));
      h->set_failcnt(r.Uint(p + "failcnt"));
    }
  }
  if (!found) {
    return absl::NotFoundError(absl::StrFormat("cgroup %s exists in no hierarchy", cgroups_path));
  }
  RETURN_IF_ERROR(Annotate(r.status(), absl::StrFormat("metrics of cgroup %s", cgroups_path)));
  return m.SerializeAsString();
}

absl::StatusOr<std::string> CgroupHierarchy::MetricsV2(const std::string& dir) const {
  // Missing files read as 0 and "max" as 2^64-1, as containerd's cgroup2 stats do.
  v2::Metrics m;
  FileReader r;
  auto p = [&](const char* name) { return dir + "/" + name; };
  m.mutable_pids()->set_current(r.Uint(p("pids.current"), kAllOnes, true));
  m.mutable_pids()->set_limit(r.Uint(p("pids.max"), kAllOnes, true));
  v2::CPUStat* cpu = m.mutable_cpu();
  r.KeyValues(p("cpu.stat"), cpu, true);
  if (!ReadPsi(r, p("cpu.pressure"), cpu->mutable_psi())) cpu->clear_psi();
  v2::MemoryStat* mem = m.mutable_memory();
  r.KeyValues(p("memory.stat"), mem, true);
  mem->set_usage(r.Uint(p("memory.current"), kAllOnes, true));
  mem->set_usage_limit(r.Uint(p("memory.max"), kAllOnes, true));
  mem->set_max_usage(r.Uint(p("memory.peak"), kAllOnes, true));
  mem->set_swap_usage(r.Uint(p("memory.swap.current"), kAllOnes, true));
  mem->set_swap_limit(r.Uint(p("memory.swap.max"), kAllOnes, true));
  mem->set_swap_max_usage(r.Uint(p("memory.swap.peak"), kAllOnes, true));
  if (!ReadPsi(r, p("memory.pressure"), mem->mutable_psi())) mem->clear_psi();
  if (!r.KeyValues(p("memory.events"), m.mutable_memory_events(), true)) m.clear_memory_events();
  v2::IOStat* io = m.mutable_io();
  if (absl::StatusOr<std::string> t = r.Text(p("io.stat"), true); t.ok()) {
    // "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0"
    for (absl::string_view line : absl::StrSplit(*t, '\n', absl::SkipEmpty())) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
      std::pair<absl::string_view, absl::string_view> mm =
          f.empty() ? std::pair<absl::string_view, absl::string_view>() : absl::StrSplit(f[0], ':');
      uint64_t ma, mi;
      if (!absl::SimpleAtoi(mm.first, &ma) || !absl::SimpleAtoi(mm.second, &mi)) continue;
      v2::IOEntry* e = io->add_usage();
      e->set_major(ma);
      e->set_minor(mi);
      for (size_t i = 1; i < f.size(); ++i) {
        std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(f[i], '=');
        uint64_t v;
        if (!absl::SimpleAtoi(kv.second, &v)) continue;
        if (kv.first == "rbytes") e->set_rbytes(v);
        if (kv.first == "wbytes") e->set_wbytes(v);
        if (kv.first == "rios") e->set_rios(v);
        if (kv.first == "wios") e->set_wios(v);
      }
    }
  }
  if (!ReadPsi(r, p("io.pressure"), io->mutable_psi())) io->clear_psi();
  for (const std::string& size : HugePageSizes(sources_.hugepages)) {
    std::string h = absl::StrFormat("%s/hugetlb.%s.", dir, size);
    v2::HugeTlbStat* s = m.add_hugetlb();
    s->set_pagesize(size);
    s->set_current(r.Uint(h + "current", kAllOnes, true));
    s->set_max(r.Uint(h + "max", kAllOnes, true));
    v2::MemoryEvents events;  // hugetlb.<size>.events: "max N" is the fail count
    r.KeyValues(h + "events", &events, true);
    s->set_failcnt(events.max());
  }
  RETURN_IF_ERROR(Annotate(r.status(), absl::StrFormat("metrics of cgroup %s", dir)));
  return m.SerializeAsString();
}

namespace {
template <typename F>
auto WithHost(F f) -> decltype(f(std::declval<const CgroupHierarchy&>())) {
  absl::StatusOr<const CgroupHierarchy*> host = CgroupHierarchy::Host();
  if (!host.ok()) return host.status();
  return f(**host);
}
}  // namespace

absl::StatusOr<std::string> ControllerPath(std::string_view controller,
                                           std::string_view cgroups_path) {
  return WithHost(
      [&](const CgroupHierarchy& h) { return h.ControllerPath(controller, cgroups_path); });
}
absl::Status CreateCgroup(std::string_view cgroups_path) {
  return WithHost([&](const CgroupHierarchy& h) { return h.Create(cgroups_path); });
}
absl::Status AddProcess(std::string_view cgroups_path, pid_t pid) {
  return WithHost([&](const CgroupHierarchy& h) { return h.AddProcess(cgroups_path, pid); });
}
absl::Status RemoveCgroup(std::string_view cgroups_path) {
  return WithHost([&](const CgroupHierarchy& h) { return h.Remove(cgroups_path); });
}
absl::StatusOr<MetricSample> ReadMetrics(std::string_view cgroups_path) {
  return WithHost([&](const CgroupHierarchy& h) { return h.ReadMetrics(cgroups_path); });
}

}  // namespace kuasar
