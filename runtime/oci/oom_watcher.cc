#include "runtime/oci/oom_watcher.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include <boost/asio/posix/stream_descriptor.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "runtime/base/atomic_file.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/unique_fd.h"

#include <spdlog/spdlog.h>

namespace kuasar {
namespace {

using boost::asio::posix::stream_descriptor;

// memory.events' oom_kill counter (cgroup v2).
absl::StatusOr<uint64_t> ReadOomKills(const std::string& events_path) {
  ASSIGN_OR_RETURN(std::string text, ReadSmallFile(events_path, 64 << 10));
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, ' ');
    uint64_t v;
    if (kv.first == "oom_kill" && absl::SimpleAtoi(kv.second, &v)) return v;
  }
  return uint64_t{0};
}

}  // namespace

struct OomWatcher::State : std::enable_shared_from_this<State> {
  struct Entry {
    std::string key;
    std::function<void()> on_oom;
    std::atomic<bool> active{true};
    std::unique_ptr<stream_descriptor> eventfd;  // v1
    std::string memory_dir;                       // v1
    int wd = -1;                                  // v2
    std::string events_path;                      // v2
    uint64_t oom_kills = 0;                       // v2: the count last seen
  };
  using EntryPtr = std::shared_ptr<Entry>;

  State(boost::asio::io_context& io, const CgroupHierarchy* hierarchy)
      : io(io), hierarchy(hierarchy) {}

  void ArmEventfd(const EntryPtr& e);  // mu held
  void OnEventfd(const EntryPtr& e);
  void ArmInotify();  // mu held
  void OnInotify();
  void RemoveLocked(const std::string& key);

  boost::asio::io_context& io;
  const CgroupHierarchy* hierarchy;
  std::mutex mu;
  bool closed = false;
  std::map<std::string, EntryPtr> entries;
  std::unique_ptr<stream_descriptor> inotify;  // v2, shared by every watch
  std::map<int, std::set<std::string>> keys_by_wd;
};

void OomWatcher::State::ArmEventfd(const EntryPtr& e) {
  e->eventfd->async_wait(stream_descriptor::wait_read,
                         [self = shared_from_this(), e](const boost::system::error_code& ec) {
                           if (!ec) self->OnEventfd(e);
                         });
}

void OomWatcher::State::OnEventfd(const EntryPtr& e) {
  std::function<void()> call;
  {
    std::lock_guard<std::mutex> l(mu);
    auto it = entries.find(e->key);
    if (closed || it == entries.end() || it->second != e) return;  // unwatched meanwhile
    uint64_t count;
    ssize_t n = ::read(e->eventfd->native_handle(), &count, sizeof(count));
    if (n < 0 && errno == EAGAIN) {
      ArmEventfd(e);
      return;
    }
    // rmdir of the cgroup also signals the eventfd: that is the end of the watch.
    std::string oom_control = e->memory_dir + "/memory.oom_control";
    if (n != sizeof(count) || ::access(oom_control.c_str(), F_OK) != 0) {
      spdlog::debug("op=oom_unwatch key={} reason=cgroup_removed", e->key);
      RemoveLocked(e->key);
      return;
    }
    call = e->on_oom;
    ArmEventfd(e);
  }
  if (e->active) call();
}

void OomWatcher::State::ArmInotify() {
  inotify->async_wait(stream_descriptor::wait_read,
                      [self = shared_from_this()](const boost::system::error_code& ec) {
                        if (!ec) self->OnInotify();
                      });
}

void OomWatcher::State::OnInotify() {
  std::vector<std::pair<EntryPtr, uint64_t>> calls;  // entry, kills to report
  {
    std::lock_guard<std::mutex> l(mu);
    if (closed) return;
    std::set<int> modified, gone;
    alignas(inotify_event) char buf[4096];
    ssize_t n;
    while ((n = ::read(inotify->native_handle(), buf, sizeof(buf))) > 0) {
      for (char* p = buf; p < buf + n;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        (ev->mask & IN_IGNORED ? gone : modified).insert(ev->wd);
        p += sizeof(inotify_event) + ev->len;
      }
    }
    for (int wd : gone) {  // memory.events went away with its cgroup
      auto it = keys_by_wd.find(wd);
      if (it == keys_by_wd.end()) continue;
      for (const std::string& key : std::set<std::string>(it->second)) RemoveLocked(key);
    }
    for (int wd : modified) {
      auto it = keys_by_wd.find(wd);
      if (it == keys_by_wd.end() || it->second.empty()) continue;
      const EntryPtr& first = entries[*it->second.begin()];
      absl::StatusOr<uint64_t> kills = ReadOomKills(first->events_path);
      if (!kills.ok()) continue;
      for (const std::string& key : it->second) {
        const EntryPtr& e = entries[key];
        if (*kills > e->oom_kills) calls.emplace_back(e, *kills - e->oom_kills);
        e->oom_kills = std::max(e->oom_kills, *kills);
      }
    }
    ArmInotify();
  }
  for (auto& [e, count] : calls) {
    for (uint64_t i = 0; i < count && e->active; ++i) e->on_oom();
  }
}

void OomWatcher::State::RemoveLocked(const std::string& key) {
  auto it = entries.find(key);
  if (it == entries.end()) return;
  EntryPtr e = it->second;
  e->active = false;
  if (e->eventfd) {
    boost::system::error_code ec;
    e->eventfd->close(ec);  // cancels the wait; the kernel drops the registration
  }
  if (e->wd >= 0) {
    auto w = keys_by_wd.find(e->wd);
    if (w != keys_by_wd.end()) {
      w->second.erase(key);
      if (w->second.empty()) {
        if (inotify) ::inotify_rm_watch(inotify->native_handle(), e->wd);
        keys_by_wd.erase(w);
      }
    }
  }
  entries.erase(it);
}

OomWatcher::OomWatcher(boost::asio::io_context& io, const CgroupHierarchy* hierarchy)
    : state_(std::make_shared<State>(io, hierarchy)) {}

OomWatcher::~OomWatcher() {
  std::lock_guard<std::mutex> l(state_->mu);
  state_->closed = true;
  while (!state_->entries.empty()) state_->RemoveLocked(state_->entries.begin()->first);
  if (state_->inotify) {
    boost::system::error_code ec;
    state_->inotify->close(ec);
  }
}

absl::Status OomWatcher::Watch(const std::string& key, const std::string& cgroup_path,
                               std::function<void()> on_oom) {
  const std::string what = absl::StrFormat("watch OOM of cgroup %s (%s)", cgroup_path, key);
  const CgroupHierarchy* h = state_->hierarchy;
  if (h == nullptr) {
    absl::StatusOr<const CgroupHierarchy*> host = CgroupHierarchy::Host();
    if (!host.ok()) return Annotate(host.status(), what);
    h = *host;
  }
  absl::StatusOr<std::string> dir = h->ControllerPath("memory", cgroup_path);
  if (!dir.ok()) return Annotate(dir.status(), what);
  auto e = std::make_shared<State::Entry>();
  e->key = key;
  e->on_oom = std::move(on_oom);

  if (h->mode() == CgroupMode::kV1) {
    e->memory_dir = *dir;
    std::string oom_path = *dir + "/memory.oom_control";
    std::string control_path = *dir + "/cgroup.event_control";
    UniqueFd oom(::open(oom_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!oom) return Annotate(ErrnoStatus(errno, "open", oom_path), what);
    UniqueFd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!efd) return Annotate(ErrnoStatus(errno, "eventfd"), what);
    UniqueFd control(::open(control_path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!control) return Annotate(ErrnoStatus(errno, "open", control_path), what);
    std::string line = absl::StrFormat("%d %d", efd.get(), oom.get());
    if (::write(control.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      return Annotate(ErrnoStatus(errno, "write", control_path), what);
    }
    // The kernel keeps its own references; our oom_control fd can go.
    std::lock_guard<std::mutex> l(state_->mu);
    if (state_->closed) return absl::FailedPreconditionError("OOM watcher is closed");
    e->eventfd = std::make_unique<stream_descriptor>(state_->io, efd.Release());
    state_->RemoveLocked(key);
    state_->entries[key] = e;
    state_->ArmEventfd(e);
    return absl::OkStatus();
  }

  e->events_path = *dir + "/memory.events";
  // The baseline is read before the watch is added: a kill in between shows up late
  // (with the next change), never not at all.
  absl::StatusOr<uint64_t> kills = ReadOomKills(e->events_path);
  if (!kills.ok()) return Annotate(kills.status(), what);
  e->oom_kills = *kills;
  std::lock_guard<std::mutex> l(state_->mu);
  if (state_->closed) return absl::FailedPreconditionError("OOM watcher is closed");
  if (!state_->inotify) {
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return Annotate(ErrnoStatus(errno, "inotify_init1"), what);
    state_->inotify = std::make_unique<stream_descriptor>(state_->io, fd);
    state_->ArmInotify();
  }
  state_->RemoveLocked(key);
  e->wd = ::inotify_add_watch(state_->inotify->native_handle(), e->events_path.c_str(), IN_MODIFY);
  if (e->wd < 0) return Annotate(ErrnoStatus(errno, "inotify_add_watch", e->events_path), what);
  state_->keys_by_wd[e->wd].insert(key);
  state_->entries[key] = e;
  return absl::OkStatus();
}

void OomWatcher::Unwatch(const std::string& key) {
  std::lock_guard<std::mutex> l(state_->mu);
  state_->RemoveLocked(key);
}

}  // namespace kuasar
