#include "runtime/ttrpc/server_core.h"

#include <boost/asio/post.hpp>

#include "absl/strings/str_format.h"

namespace kuasar::ttrpc {

absl::Status ServerCore::Register(std::string_view service, std::string_view method,
                                  MethodEntry entry) {
  if (service.empty() || method.empty()) {
    return absl::InvalidArgumentError("ttrpc: service and method names must not be empty");
  }
  std::unique_lock<std::shared_mutex> lock(registry_mu_);
  auto sit = services_.find(service);
  if (sit == services_.end()) sit = services_.emplace(std::string(service), MethodMap{}).first;
  if (sit->second.find(method) != sit->second.end()) {
    return absl::AlreadyExistsError(
        absl::StrFormat("ttrpc: method %s/%s registered twice", service, method));
  }
  sit->second.emplace(std::string(method), std::make_shared<const MethodEntry>(std::move(entry)));
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const MethodEntry>> ServerCore::Lookup(
    std::string_view service, std::string_view method) const {
  std::shared_lock<std::shared_mutex> lock(registry_mu_);
  auto sit = services_.find(service);
  if (sit == services_.end()) {
    return absl::UnimplementedError(absl::StrFormat("service %s", service));
  }
  auto mit = sit->second.find(method);
  if (mit == sit->second.end()) {
    return absl::UnimplementedError(absl::StrFormat("method %s", method));
  }
  return mit->second;
}

void ServerCore::SetWorkerPool(boost::asio::thread_pool* pool) {
  std::lock_guard<std::mutex> lock(pool_mu_);
  pool_ = pool;
}

bool ServerCore::RunOnWorker(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(pool_mu_);
  if (pool_ == nullptr) return false;
  boost::asio::post(*pool_, std::move(fn));
  return true;
}

bool ServerCore::AddConnection(const std::shared_ptr<ServerConnection>& conn) {
  std::lock_guard<std::mutex> lock(conn_mu_);
  if (shutting_down_) return false;
  connections_.emplace(conn.get(), conn);
  return true;
}

void ServerCore::RemoveConnection(const ServerConnection* conn) {
  {
    std::lock_guard<std::mutex> lock(conn_mu_);
    connections_.erase(conn);
  }
  conn_cv_.notify_all();
}

std::vector<std::shared_ptr<ServerConnection>> ServerCore::Connections() const {
  std::vector<std::shared_ptr<ServerConnection>> out;
  std::lock_guard<std::mutex> lock(conn_mu_);
  for (const auto& [raw, weak] : connections_) {
    if (auto c = weak.lock()) out.push_back(std::move(c));
  }
  return out;
}

std::size_t ServerCore::ConnectionCount() const {
  std::lock_guard<std::mutex> lock(conn_mu_);
  return connections_.size();
}

bool ServerCore::WaitNoConnections(std::chrono::steady_clock::time_point until) const {
  std::unique_lock<std::mutex> lock(conn_mu_);
  return conn_cv_.wait_until(lock, until, [&] { return connections_.empty(); });
}

void ServerCore::BeginShutdown() {
  std::lock_guard<std::mutex> lock(conn_mu_);
  shutting_down_ = true;
}

}  // namespace kuasar::ttrpc
