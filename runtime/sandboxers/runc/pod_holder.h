// PodHolder: starting, reaching and stopping a pod's kuasar-holder process (see
// holder/kuasar_holder.c for what the holder is and its wire format).
//
// Start() spawns the holder, which double-forks into the pod's namespaces and reports
// READY; Connect() opens its control socket. Spawn() runs a program as the holder's
// child (so the programs' orphans, i.e. container processes, are reaped by the holder);
// every exit the holder reaps goes to the ExitRegistry. Thread-safe; one io_context
// thread reads the socket.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/base/process_identity.h"
#include "runtime/base/unique_fd.h"
#include "runtime/oci/exit_registry.h"

namespace kuasar {

struct HolderOptions {
  std::string holder_binary;  // path to kuasar-holder
  std::string dir;            // the sandbox dir: exits.journal, holder.log
  std::string socket_dir;     // short dir for holder.sock (see SocketDirFor)
  std::string netns_path;     // joined when non-empty
  bool new_ipc = true;
  bool new_uts = true;
  bool new_pid = false;       // pod-shared PID namespace: the holder keeps its PID 1
  std::string hostname;
  // Pod sysctls (namespaced keys only, see ValidatePodSysctl), set in the pod's namespaces.
  std::map<std::string, std::string> sysctls;
  // When set, the holder owns the pod's Task API socket here (see kuasar_holder.c).
  std::string task_socket;
  absl::Duration timeout = absl::Seconds(10);
};

struct HolderInfo {
  ProcessIdentity holder;   // the holder process (host PID namespace)
  ProcessIdentity sandbox;  // the pod's namespace owner: the holder or its PID-1 child
};

// Spawns the holder and waits for READY. On error nothing is left running.
absl::StatusOr<HolderInfo> StartHolder(const HolderOptions& options);

// holder.sock inside the socket dir; the journal and holder.pid inside the sandbox dir.
std::string HolderPidFile(const std::string& dir);
// The holder a sandbox dir's pid file names, if it is alive and is that dir's holder.
absl::StatusOr<ProcessIdentity> FindHolderByPidFile(const std::string& dir);
std::string HolderSocketPath(const std::string& socket_dir);
std::string HolderJournalPath(const std::string& dir);

// Exits recorded in the journal (pid -> wait status, time), for recovery.
std::vector<JournaledExit> ReadHolderJournal(const std::string& dir);

class HolderConnection : public std::enable_shared_from_this<HolderConnection> {
 public:
  // containerd's Task API connections the holder accepted (and keeps a copy of).
  using TaskConnHandler = std::function<void(uint32_t id, UniqueFd fd)>;
  // Exits are delivered to `exits`; task connections (all of them again after a
  // reconnect) to `on_task_conn`, on the io thread; `on_disconnect` runs once if the
  // holder goes away.
  static absl::StatusOr<std::shared_ptr<HolderConnection>> Connect(
      boost::asio::io_context& io, const std::string& socket_path, ExitRegistry* exits,
      std::function<void()> on_disconnect, TaskConnHandler on_task_conn = nullptr);
  ~HolderConnection();

  // Runs argv (argv[0] absolute) with `env` and stdio fds (-1: /dev/null) as a child of
  // the holder. Returns its pid once exec succeeded; the exec errno as an error if not.
  absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv,
                              const std::vector<std::string>& env, std::array<int, 3> stdio,
                              absl::Duration timeout = absl::Seconds(10));
  void Close();

 private:
  HolderConnection(boost::asio::io_context& io, int fd, ExitRegistry* exits,
                   std::function<void()> on_disconnect, TaskConnHandler on_task_conn);
  void ReadLoop();
  void OnReadable();
  void FailAll();

  boost::asio::posix::stream_descriptor socket_;
  ExitRegistry* exits_;
  std::function<void()> on_disconnect_;
  TaskConnHandler on_task_conn_;
  std::mutex mu_;
  std::mutex send_mu_;  // one sendmsg at a time keeps packets whole
  uint32_t next_req_ = 1;
  struct Pending {
    bool done = false;
    int32_t result = 0;
  };
  std::map<uint32_t, std::shared_ptr<Pending>> pending_;
  bool closed_ = false;
  std::condition_variable cv_;
};

}  // namespace kuasar
