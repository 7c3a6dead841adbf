// OomWatcher: tells the task service when the kernel OOM-kills a process in a container's
// cgroup, so it can publish TaskOOM. cgroup v1: an eventfd registered for
// memory.oom_control through cgroup.event_control; cgroup v2: inotify on memory.events,
// firing as its oom_kill counter grows. No thread of its own: everything waits on the
// io_context. Watch/Unwatch are thread-safe; callbacks run on the io_context's thread,
// outside any lock (a callback may call Watch/Unwatch).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "absl/status/status.h"
#include "runtime/oci/cgroup.h"

namespace kuasar {

class OomWatcher {
 public:
  // `hierarchy` (which must outlive the watcher) defaults to the host's.
  explicit OomWatcher(boost::asio::io_context& io, const CgroupHierarchy* hierarchy = nullptr);
  // Stops every watch (same caveat as Unwatch).
  ~OomWatcher();
  OomWatcher(const OomWatcher&) = delete;
  OomWatcher& operator=(const OomWatcher&) = delete;

  // Calls `on_oom` once per OOM kill in `cgroup_path` (OCI linux.cgroupsPath, cgroupfs
  // semantics) until Unwatch(key) or until the cgroup is removed. Replaces an earlier
  // watch with the same key. NOT_FOUND if the cgroup does not exist.
  // v1 counts one kill per kernel notification (the kernel notifies once per OOM
  // episode in the cgroup); v2 counts memory.events' oom_kill.
  absl::Status Watch(const std::string& key, const std::string& cgroup_path,
                     std::function<void()> on_oom);
  // Stops the callbacks of `key`. One that the io thread is already starting may still
  // run once; none holds a lock of ours, so Unwatch never waits for a callback.
  void Unwatch(const std::string& key);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace kuasar
