#include "runtime/guest/agent.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_format.h"
#include "runtime/base/id_check.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/guest/guest_init.h"
#include "runtime/guest/sandbox_ttrpc.h"
#include "runtime/server/task_ttrpc_endpoints.h"
#include "runtime/version.h"

namespace kuasar::guest {
namespace {

// Task events have no listener in the guest: containerd learns exits through Task.Wait
// (and the sandboxer from the VM's exit). They are logged for the record.
class LoggingEventPublisher final : public EventPublisher {
 public:
  void Publish(std::string_view ns, std::string_view topic,
               const google::protobuf::Message& event) override {
    spdlog::debug("op=event ns={} topic={} event=\"{}\"", ns, topic, event.ShortDebugString());
  }
};

// How long containers get to die after SIGKILL before they are deleted regardless.
constexpr absl::Duration kStopWait = absl::Seconds(3);

}  // namespace

Agent::Agent(AgentOptions options)
    : options_(std::move(options)), work_(boost::asio::make_work_guard(io_)) {}

absl::StatusOr<std::unique_ptr<Agent>> Agent::Start(const AgentOptions& options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  std::unique_ptr<Agent> a(new Agent(options));
  if (absl::Status st = a->Init(); !st.ok()) {
    a->Teardown();
    return st;
  }
  return a;
}

absl::Status Agent::Init() {
  const std::string& state = options_.state_dir;
  const bool host_root = options_.init != InitMode::kVm;  // the guest's / is the host's
  std::string etc_dir = host_root ? state + "/etc" : "/etc";
  RETURN_IF_ERROR(EnsurePrivateDirectory(state));
  for (const char* sub : {"/runtime", "/s"}) RETURN_IF_ERROR(EnsurePrivateDirectory(state + sub));
  if (host_root) RETURN_IF_ERROR(EnsurePrivateDirectory(etc_dir, 0755));

  io_thread_ = std::thread([this] { io_.run(); });
  // Streams hold a worker for their whole life; keep the others for Task API calls.
  workers_ = std::make_unique<boost::asio::thread_pool>(
      static_cast<size_t>(options_.worker_threads + options_.max_streams));
  ASSIGN_OR_RETURN(reaper_, Reaper::Start(io_, &exits_));
  ASSIGN_OR_RETURN(
      stop_signals_,
      SignalWatcher::Start(io_, {SIGTERM, SIGINT, SIGPWR}, [this](const signalfd_siginfo& si) {
        spdlog::info("op=signal sig={} from_pid={}", si.ssi_signo, si.ssi_pid);
        RequestExit();
      }));

  OciCliEngineOptions eo;
  eo.binary = options_.runtime;
  eo.root = state + "/runtime";
  eo.command_spawner = &spawner_;  // the Reaper takes every exit; see reaper.h
  eo.no_pivot = options_.init == InitMode::kVm && RootIsInitialRamfs();
  ASSIGN_OR_RETURN(engine_, MakeOciCliEngine(eo));
  oom_ = std::make_unique<OomWatcher>(io_);
  events_ = std::make_unique<LoggingEventPublisher>();

  OciTaskServiceDeps deps;
  deps.sandbox_id = "guest";
  deps.sandbox_dir = state;
  deps.socket_dir = state + "/s";
  deps.io = &io_;
  deps.engine = engine_.get();
  deps.spawner = &spawner_;
  deps.exits = &exits_;
  deps.events = events_.get();
  deps.oom = oom_.get();
  // Bound into each container that lacks them, once SetupSandbox has written them.
  deps.pod_files = {etc_dir + "/hostname", etc_dir + "/hosts", etc_dir + "/resolv.conf", ""};
  deps.guest_namespaces = options_.init != InitMode::kNone;
  containers_ = std::make_shared<OciTaskService>(std::move(deps));

  StreamRegistryOptions so;
  so.dir = state + "/streams";
  ASSIGN_OR_RETURN(streams_, StreamRegistry::Create(io_, so));
  tasks_ = std::make_shared<GuestTaskService>(containers_, streams_.get());

  system_ = std::make_unique<LinuxGuestSystem>(&spawner_);
  SandboxServiceOptions sopt;
  sopt.caps.set_hostname = options_.init != InitMode::kNone;
  sopt.caps.configure_network = options_.init != InitMode::kNone;
  sopt.caps.set_clock = options_.init == InitMode::kVm;
  sopt.etc_dir = etc_dir;
  sopt.uptime_from_boot = options_.init == InitMode::kVm;
  sopt.stop_containers = [this] { StopContainers(); };
  sopt.request_exit = [this] { RequestExit(); };
  sandbox_ = std::make_unique<SandboxService>(system_.get(), std::move(sopt));

  ttrpc::ServerOptions to;
  to.io_context = &io_;
  to.worker_pool = workers_.get();
  server_ = std::make_unique<ttrpc::Server>(to);
  RETURN_IF_ERROR(RegisterTaskService(*server_, tasks_));
  RETURN_IF_ERROR(
      RegisterSandboxService(*server_, {sandbox_.get(), streams_.get(), options_.max_streams}));
  // Before any channel opens, so no Check can see it unset.
  sandbox_->MarkReady();
  RETURN_IF_ERROR(OpenChannels());
  if (options_.init == InitMode::kVm) {
    auto button = PowerButton::Watch(io_, [this] {
      spdlog::info("op=power-button");
      RequestExit();
    });
    if (button.ok()) power_button_ = std::move(*button);
  }
  spdlog::info("op=ready version={} pid={} init={} runtime={} no_pivot={} state_dir={}", kVersion,
               ::getpid(), InitModeName(options_.init), engine_->Name(), eo.no_pivot, state);
  return absl::OkStatus();
}

absl::Status Agent::OpenChannels() {
  for (const ListenAddress& a : options_.listen) {
    if (a.kind == ListenAddress::Kind::kUnix) {
      RETURN_IF_ERROR(server_->Listen(a.path, 0600));
      spdlog::info("op=listen unix={}", a.path);
    } else {
      ASSIGN_OR_RETURN(auto l, VsockListener::Start(io_, server_.get(), a.port));
      vsock_.push_back(std::move(l));
    }
  }
  for (int fd : options_.serve_fds) {
    ASSIGN_OR_RETURN(auto relay, ServeInheritedFd(server_.get(), fd));
    serve_fds_.push_back(std::move(relay));
  }
  for (const std::string& name : options_.serial) {
    serial_.push_back(std::make_unique<SerialPortServer>(server_.get(), name));
  }
  return absl::OkStatus();
}

void Agent::RequestExit() {
  std::lock_guard<std::mutex> l(mu_);
  exit_requested_ = true;
  cv_.notify_all();
}

void Agent::StopContainers() {
  std::lock_guard<std::mutex> l(stop_mu_);
  if (containers_stopped_ || !containers_) return;
  containers_stopped_ = true;
  size_t n = containers_->container_count();
  containers_->KillAll();
  absl::Time deadline = absl::Now() + kStopWait;
  while (!containers_->AllStopped() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  containers_->DeleteAll();
  if (streams_) streams_->RemoveAll();
  spdlog::info("op=stop-containers count={}", n);
}

void Agent::Run() {
  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return exit_requested_; });
  }
  StopContainers();
  Teardown();
}

void Agent::Teardown() {
  if (torn_down_) return;
  torn_down_ = true;
  // Connections first (their calls may still use everything below), then the channels'
  // own threads, then what the io thread drives.
  if (server_) (void)server_->Shutdown(std::chrono::seconds(1));
  serial_.clear();
  serve_fds_.clear();
  vsock_.clear();
  power_button_.reset();
  if (streams_) streams_->RemoveAll();
  if (stop_signals_) stop_signals_->Close();
  if (workers_) workers_->join();
  work_.reset();
  io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
  server_.reset();
  reaper_.reset();  // the io thread is gone: no SIGCHLD callback can run any more
  stop_signals_.reset();
  spdlog::info("op=exit");
}

Agent::~Agent() { Teardown(); }

}  // namespace kuasar::guest
