#include "pybind/src/task_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "io/containerd/cgroups/v1/metrics.pb.h"
#include "io/containerd/cgroups/v2/metrics.pb.h"
#include "pybind/src/proto_json.h"
#include "runtime/base/status_macros.h"
#include "runtime/ttrpc/typed_client.h"

namespace kuasar::python {
namespace {

namespace task = containerd::task::v3;
constexpr std::string_view kService = "containerd.task.v3.Task";

struct Address {
  std::string path;
  bool hybrid_vsock = false;
  uint32_t port = 0;
};

absl::StatusOr<Address> ParseAddress(std::string_view address) {
  absl::string_view rest(address.data(), address.size());
  Address a;
  if (absl::ConsumePrefix(&rest, "ttrpc+hvsock://") || absl::ConsumePrefix(&rest, "hvsock://")) {
    size_t colon = rest.rfind(':');
    if (colon == absl::string_view::npos || !absl::SimpleAtoi(rest.substr(colon + 1), &a.port)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("task address \"%s\": hvsock needs PATH:PORT", address));
    }
    a.path = std::string(rest.substr(0, colon));
    a.hybrid_vsock = true;
  } else if (absl::ConsumePrefix(&rest, "ttrpc+unix://") || absl::ConsumePrefix(&rest, "unix://") ||
             absl::StartsWith(rest, "/")) {
    a.path = std::string(rest);
  } else {
    return absl::InvalidArgumentError(absl::StrFormat(
        "task address \"%s\": expected ttrpc+unix://, unix://, ttrpc+hvsock:// or a path",
        address));
  }
  if (a.path.empty() || a.path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrFormat("task address \"%s\": the socket path must be absolute", address));
  }
  return a;
}

// Hybrid vsock (Firecracker / Cloud Hypervisor): connect to the VMM's unix socket, ask for
// the guest port, read the one-line answer byte by byte so nothing of the ttrpc stream
// that follows is consumed.
absl::StatusOr<UniqueFd> DialHybridVsock(const Address& a, absl::Time deadline) {
  sockaddr_un addr{};
  if (a.path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrFormat("socket path %s is too long", a.path));
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, a.path.c_str(), a.path.size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return absl::UnavailableError(ErrnoStatus(errno, "connect", a.path).message());
  }
  std::string hello = absl::StrFormat("CONNECT %u\n", a.port);
  if (::send(fd.get(), hello.data(), hello.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(hello.size())) {
    return absl::UnavailableError(ErrnoStatus(errno, "send CONNECT", a.path).message());
  }
  std::string line;
  while (line.size() < 64) {
    pollfd p{fd.get(), POLLIN, 0};
    int ms =
        static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    int rc = ::poll(&p, 1, ms);
    if (rc == 0) {
      return absl::DeadlineExceededError(
          absl::StrFormat("hybrid vsock %s: no answer to CONNECT %u", a.path, a.port));
    }
    if (rc < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "poll", a.path);
    }
    char c;
    ssize_t n = ::recv(fd.get(), &c, 1, 0);
    if (n <= 0) {
      return absl::UnavailableError(absl::StrFormat(
          "hybrid vsock %s: connection closed after CONNECT %u (no listener on that port?)", a.path,
          a.port));
    }
    if (c == '\n') break;
    line.push_back(c);
  }
  if (!absl::StartsWith(line, "OK")) {
    return absl::UnavailableError(
        absl::StrFormat("hybrid vsock %s: CONNECT %u answered \"%s\"", a.path, a.port, line));
  }
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TaskClient>> TaskClient::Connect(std::string_view address,
                                                                absl::Duration timeout) {
  ASSIGN_OR_RETURN(Address a, ParseAddress(address));
  absl::Time deadline = absl::Now() + timeout;
  absl::Status last;  // of the previous attempt: the reason worth reporting at the deadline
  while (true) {
    absl::StatusOr<std::unique_ptr<ttrpc::Client>> client;
    if (a.hybrid_vsock) {
      auto fd = DialHybridVsock(a, deadline);
      client = fd.ok() ? ttrpc::Client::FromFd(std::move(*fd)) : fd.status();
    } else {
      client = ttrpc::Client::Connect(a.path);
    }
    if (client.ok()) {
      return std::unique_ptr<TaskClient>(new TaskClient(std::string(address), std::move(*client)));
    }
    absl::Status st = client.status();
    if (st.code() == absl::StatusCode::kDeadlineExceeded && !last.ok()) st = last;
    bool retry =
        st.code() == absl::StatusCode::kUnavailable || st.code() == absl::StatusCode::kNotFound;
    if (!retry || absl::Now() >= deadline) {
      return Annotate(st, absl::StrFormat("task API at %s", address));
    }
    last = st;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

ttrpc::CallOptions TaskClient::Options() const {
  ttrpc::CallOptions o;
  o.timeout = absl::ToChronoNanoseconds(call_timeout_);
  return o;
}

absl::StatusOr<uint32_t> TaskClient::Create(std::string_view id, std::string_view bundle,
                                            const std::vector<RootfsMount>& rootfs,
                                            const TaskStdio& stdio) {
  task::CreateTaskRequest req;
  req.set_id(std::string(id));
  req.set_bundle(std::string(bundle));
  for (const RootfsMount& m : rootfs) {
    auto* pm = req.add_rootfs();
    pm->set_type(m.type);
    pm->set_source(m.source);
    pm->set_target(m.target);
    for (const auto& o : m.options) pm->add_options(o);
  }
  req.set_terminal(stdio.terminal);
  req.set_stdin(stdio.stdin_path);
  req.set_stdout(stdio.stdout_path);
  req.set_stderr(stdio.stderr_path);
  ASSIGN_OR_RETURN(auto resp, ttrpc::CallMethod<task::CreateTaskResponse>(
                                  *client_, kService, "Create", req, Options()));
  return resp.pid();
}

absl::StatusOr<uint32_t> TaskClient::Start(std::string_view id, std::string_view exec_id) {
  task::StartRequest req;
  req.set_id(std::string(id));
  req.set_exec_id(std::string(exec_id));
  ASSIGN_OR_RETURN(auto resp, ttrpc::CallMethod<task::StartResponse>(*client_, kService, "Start",
                                                                     req, Options()));
  return resp.pid();
}

void TaskClient::WaitAsync(std::string_view id, std::string_view exec_id, absl::Duration timeout,
                           WaitCallback done) {
  task::WaitRequest req;
  req.set_id(std::string(id));
  req.set_exec_id(std::string(exec_id));
  ttrpc::CallOptions o;
  if (timeout != absl::InfiniteDuration()) o.timeout = absl::ToChronoNanoseconds(timeout);
  ttrpc::CallMethodAsync<task::WaitResponse>(*client_, kService, "Wait", req, o, std::move(done));
}

absl::Status TaskClient::Kill(std::string_view id, std::string_view exec_id, uint32_t signal,
                              bool all) {
  task::KillRequest req;
  req.set_id(std::string(id));
  req.set_exec_id(std::string(exec_id));
  req.set_signal(signal);
  req.set_all(all);
  return client_->Call(kService, "Kill", req.SerializeAsString(), Options()).status();
}

absl::StatusOr<task::DeleteResponse> TaskClient::Delete(std::string_view id,
                                                        std::string_view exec_id) {
  task::DeleteRequest req;
  req.set_id(std::string(id));
  req.set_exec_id(std::string(exec_id));
  return ttrpc::CallMethod<task::DeleteResponse>(*client_, kService, "Delete", req, Options());
}

absl::Status TaskClient::Exec(std::string_view id, std::string_view exec_id,
                              std::string_view process_json, const TaskStdio& stdio) {
  task::ExecProcessRequest req;
  req.set_id(std::string(id));
  req.set_exec_id(std::string(exec_id));
  req.set_terminal(stdio.terminal);
  req.set_stdin(stdio.stdin_path);
  req.set_stdout(stdio.stdout_path);
  req.set_stderr(stdio.stderr_path);
  // containerd's typeurl name for an OCI Process; the value is the JSON itself.
  req.mutable_spec()->set_type_url("types.containerd.io/opencontainers/runtime-spec/1/Process");
  req.mutable_spec()->set_value(std::string(process_json));
  return client_->Call(kService, "Exec", req.SerializeAsString(), Options()).status();
}

absl::StatusOr<task::StateResponse> TaskClient::State(std::string_view id,
                                                      std::string_view exec_id) {
  task::StateRequest req;
  req.set_id(std::string(id));
  req.set_exec_id(std::string(exec_id));
  return ttrpc::CallMethod<task::StateResponse>(*client_, kService, "State", req, Options());
}

absl::StatusOr<std::vector<uint32_t>> TaskClient::Pids(std::string_view id) {
  task::PidsRequest req;
  req.set_id(std::string(id));
  ASSIGN_OR_RETURN(
      auto resp, ttrpc::CallMethod<task::PidsResponse>(*client_, kService, "Pids", req, Options()));
  std::vector<uint32_t> pids;
  for (const auto& p : resp.processes()) pids.push_back(p.pid());
  return pids;
}

absl::StatusOr<std::string> TaskClient::StatsJson(std::string_view id) {
  task::StatsRequest req;
  req.set_id(std::string(id));
  ASSIGN_OR_RETURN(auto resp, ttrpc::CallMethod<task::StatsResponse>(*client_, kService, "Stats",
                                                                     req, Options()));
  std::string_view type = resp.stats().type_url();
  if (size_t slash = type.rfind('/'); slash != std::string_view::npos)
    type.remove_prefix(slash + 1);
  std::string metrics;
  if (type == "io.containerd.cgroups.v1.Metrics") {
    io::containerd::cgroups::v1::Metrics m;
    if (!m.ParseFromString(resp.stats().value())) return absl::DataLossError("bad v1 metrics");
    ASSIGN_OR_RETURN(metrics, ProtoToJson(m));
  } else if (type == "io.containerd.cgroups.v2.Metrics") {
    io::containerd::cgroups::v2::Metrics m;
    if (!m.ParseFromString(resp.stats().value())) return absl::DataLossError("bad v2 metrics");
    ASSIGN_OR_RETURN(metrics, ProtoToJson(m));
  } else {
    return absl::UnimplementedError(
        absl::StrFormat("Task.Stats of %s: unknown metrics type \"%s\"", id, type));
  }
  return absl::StrFormat("{\"type\": \"%s\", \"metrics\": %s}", type, metrics);
}

absl::Status TaskClient::CloseIo(std::string_view id, std::string_view exec_id, bool stdin) {
  task::CloseIORequest req;
  req.set_id(std::string(id));
  req.set_exec_id(std::string(exec_id));
  req.set_stdin(stdin);
  return client_->Call(kService, "CloseIO", req.SerializeAsString(), Options()).status();
}

absl::Status TaskClient::Resize(std::string_view id, std::string_view exec_id, uint32_t width,
                                uint32_t height) {
  task::ResizePtyRequest req;
  req.set_id(std::string(id));
  req.set_exec_id(std::string(exec_id));
  req.set_width(width);
  req.set_height(height);
  return client_->Call(kService, "ResizePty", req.SerializeAsString(), Options()).status();
}

absl::StatusOr<task::ConnectResponse> TaskClient::ConnectInfo(std::string_view id) {
  task::ConnectRequest req;
  req.set_id(std::string(id));
  return ttrpc::CallMethod<task::ConnectResponse>(*client_, kService, "Connect", req, Options());
}

void TaskClient::Close() { (void)client_->Close(); }

}  // namespace kuasar::python
