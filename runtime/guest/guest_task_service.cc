#include "runtime/guest/guest_task_service.h"

#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"

namespace kuasar::guest {

absl::StatusOr<GuestTaskService::Mapped> GuestTaskService::Map(const Key& key,
                                                               const std::string& in,
                                                               const std::string& out,
                                                               const std::string& err) {
  Mapped m{in, out, err, {{}, in, out, err}};
  ASSIGN_OR_RETURN(auto in_token, ParseStreamUri(in));
  ASSIGN_OR_RETURN(auto out_token, ParseStreamUri(out));
  ASSIGN_OR_RETURN(auto err_token, ParseStreamUri(err));
  if (!in_token && !out_token && !err_token) return m;
  if (in_token && (in_token == out_token || in_token == err_token)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("stream token %s cannot be both stdin and an output", *in_token));
  }
  auto fail = [&](absl::Status st) {
    Release(m.streams.tokens);
    return st;
  };
  if (in_token) {
    // The writer's clean end closes the process's stdin, as Task.CloseIO would.
    std::weak_ptr<TaskService> inner = inner_;
    auto path = streams_->AddInput(*in_token, [inner, key] {
      auto svc = inner.lock();
      if (!svc) return;
      task::CloseIORequest req;
      req.set_id(key.first);
      req.set_exec_id(key.second);
      req.set_stdin(true);
      if (absl::Status st = svc->CloseIO(req); !st.ok()) {
        spdlog::debug("container={} exec={} op=close-stdin error=\"{}\"", key.first, key.second,
                      st.message());
      }
    });
    if (!path.ok()) return fail(path.status());
    m.stdin_path = *path;
    m.streams.tokens.push_back(*in_token);
  }
  if (out_token) {
    auto path = streams_->AddOutput(*out_token);
    if (!path.ok()) return fail(path.status());
    m.stdout_path = *path;
    m.streams.tokens.push_back(*out_token);
  }
  if (err_token) {
    if (err_token == out_token) {
      m.stderr_path = m.stdout_path;  // both into one stream
    } else {
      auto path = streams_->AddOutput(*err_token);
      if (!path.ok()) return fail(path.status());
      m.stderr_path = *path;
      m.streams.tokens.push_back(*err_token);
    }
  }
  return m;
}

void GuestTaskService::Release(const std::vector<std::string>& tokens) {
  for (const auto& t : tokens) streams_->Remove(t);
}

void GuestTaskService::Started(const Key& key) {
  std::vector<std::string> tokens;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = procs_.find(key);
    if (it == procs_.end()) return;
    tokens = it->second.tokens;
  }
  for (const auto& t : tokens) streams_->ProcessStarted(t);
}

size_t GuestTaskService::stream_process_count() const {
  std::lock_guard<std::mutex> l(mu_);
  return procs_.size();
}

absl::StatusOr<task::CreateTaskResponse> GuestTaskService::Create(
    std::string_view ns, const task::CreateTaskRequest& req) {
  Key key{req.id(), ""};
  ASSIGN_OR_RETURN(Mapped m, Map(key, req.stdin(), req.stdout(), req.stderr()));
  if (m.streams.tokens.empty()) return inner_->Create(ns, req);
  task::CreateTaskRequest mapped = req;
  mapped.set_stdin(m.stdin_path);
  mapped.set_stdout(m.stdout_path);
  mapped.set_stderr(m.stderr_path);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (procs_.contains(key)) {
      Release(m.streams.tokens);
      return absl::AlreadyExistsError(absl::StrFormat("container %s already exists", req.id()));
    }
    procs_[key] = m.streams;
  }
  auto resp = inner_->Create(ns, mapped);
  if (!resp.ok()) {
    {
      std::lock_guard<std::mutex> l(mu_);
      procs_.erase(key);
    }
    Release(m.streams.tokens);
    return resp;
  }
  Started(key);  // the runtime has the container's ends now
  return resp;
}

absl::Status GuestTaskService::Exec(const task::ExecProcessRequest& req) {
  Key key{req.id(), req.exec_id()};
  ASSIGN_OR_RETURN(Mapped m, Map(key, req.stdin(), req.stdout(), req.stderr()));
  if (m.streams.tokens.empty()) return inner_->Exec(req);
  task::ExecProcessRequest mapped = req;
  mapped.set_stdin(m.stdin_path);
  mapped.set_stdout(m.stdout_path);
  mapped.set_stderr(m.stderr_path);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (procs_.contains(key)) {
      Release(m.streams.tokens);
      return absl::AlreadyExistsError(
          absl::StrFormat("exec %s already exists in container %s", req.exec_id(), req.id()));
    }
    procs_[key] = m.streams;
  }
  absl::Status st = inner_->Exec(mapped);
  if (!st.ok()) {
    {
      std::lock_guard<std::mutex> l(mu_);
      procs_.erase(key);
    }
    Release(m.streams.tokens);
  }
  return st;
}

absl::StatusOr<task::StartResponse> GuestTaskService::Start(const task::StartRequest& req) {
  auto resp = inner_->Start(req);
  // An exec opens its stdio at Start; whether it ran or not, the keep-alives go now.
  if (!req.exec_id().empty()) Started({req.id(), req.exec_id()});
  return resp;
}

absl::StatusOr<task::DeleteResponse> GuestTaskService::Delete(const task::DeleteRequest& req) {
  auto resp = inner_->Delete(req);
  if (!resp.ok()) return resp;
  std::vector<std::string> tokens;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto it = procs_.begin(); it != procs_.end();) {
      // Deleting the init process deletes the container and every exec in it.
      bool match = it->first.first == req.id() &&
                   (req.exec_id().empty() || it->first.second == req.exec_id());
      if (match) {
        tokens.insert(tokens.end(), it->second.tokens.begin(), it->second.tokens.end());
        it = procs_.erase(it);
      } else {
        ++it;
      }
    }
  }
  Release(tokens);
  return resp;
}

absl::StatusOr<task::StateResponse> GuestTaskService::State(const task::StateRequest& req) {
  auto resp = inner_->State(req);
  if (!resp.ok()) return resp;
  std::lock_guard<std::mutex> l(mu_);
  auto it = procs_.find({req.id(), req.exec_id()});
  if (it != procs_.end()) {
    resp->set_stdin(it->second.stdin_uri);
    resp->set_stdout(it->second.stdout_uri);
    resp->set_stderr(it->second.stderr_uri);
  }
  return resp;
}

}  // namespace kuasar::guest
