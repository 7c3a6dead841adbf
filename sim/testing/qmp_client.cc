#include "sim/testing/qmp_client.h"

#include <poll.h>
#include <unistd.h>

#include <chrono>

#include "runtime/base/status_macros.h"
#include "sim/testing/rest_client.h"

namespace kuasar::sim::testing {

using nlohmann::json;

absl::StatusOr<QmpClient> QmpClient::Connect(const std::string& path) {
  ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnix(path));
  QmpClient c(std::move(fd));
  ASSIGN_OR_RETURN(c.greeting_, c.ReadMessage(5000));
  return c;
}

absl::StatusOr<json> QmpClient::ReadMessage(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      lines_.push_back(line);
      json j = json::parse(line, nullptr, false);
      if (j.is_discarded()) return absl::DataLossError("not JSON: " + line);
      return j;
    }
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count());
    if (left <= 0) return absl::DeadlineExceededError("no QMP message");
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) continue;
    char b[65536];
    ssize_t n = ::read(fd_.get(), b, sizeof(b));
    if (n <= 0) {
      closed_ = true;
      return absl::UnavailableError("QMP connection closed");
    }
    buf_.append(b, static_cast<size_t>(n));
  }
}

absl::StatusOr<json> QmpClient::SendRaw(const std::string& bytes, int timeout_ms) {
  if (::write(fd_.get(), bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
    return ErrnoStatus(errno, "write QMP");
  }
  while (true) {
    ASSIGN_OR_RETURN(json m, ReadMessage(timeout_ms));
    if (m.contains("event")) {
      events_.push_back(m);
      continue;
    }
    return m;
  }
}

absl::StatusOr<json> QmpClient::Execute(const std::string& command, const json& args,
                                        int timeout_ms) {
  json cmd = {{"execute", command}};
  if (!args.is_null()) cmd["arguments"] = args;
  return SendRaw(cmd.dump() + "\n", timeout_ms);
}

absl::Status QmpClient::Negotiate() {
  ASSIGN_OR_RETURN(json r, Execute("qmp_capabilities"));
  if (!r.contains("return")) return absl::InternalError("qmp_capabilities: " + r.dump());
  return absl::OkStatus();
}

absl::StatusOr<json> QmpClient::WaitEvent(const std::string& name, int timeout_ms) {
  for (size_t i = 0; i < events_.size(); ++i) {
    if (events_[i].value("event", "") == name) {
      json e = events_[i];
      events_.erase(events_.begin() + static_cast<long>(i));
      return e;
    }
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    auto m = ReadMessage(timeout_ms);
    if (!m.ok()) return m.status();
    if (m->value("event", "") == name) return *m;
    if (m->contains("event")) events_.push_back(*m);
  }
  return absl::DeadlineExceededError("no event " + name);
}

}  // namespace kuasar::sim::testing
