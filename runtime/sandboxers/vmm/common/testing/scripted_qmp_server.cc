#include "runtime/sandboxers/vmm/common/testing/scripted_qmp_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

namespace kuasar::vmm::testing {

using nlohmann::json;

ScriptedQmpServer::ScriptedQmpServer(UniqueFd fd) : fd_(std::move(fd)) {
  handlers_["qmp_capabilities"] = [](const json&) { return json{{"return", json::object()}}; };
}

ScriptedQmpServer::~ScriptedQmpServer() {
  CloseConnection();
  if (thread_.joinable()) thread_.join();
}

std::string ScriptedQmpServer::DefaultGreeting() {
  return R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, )"
         R"("package": "fake"}, "capabilities": ["oob"]}})";
}

void ScriptedQmpServer::OnCommand(const std::string& name, Handler handler) {
  std::lock_guard<std::mutex> lock(mu_);
  handlers_[name] = std::move(handler);
}

void ScriptedQmpServer::Start(std::string greeting) {
  if (!greeting.empty()) SendLine(greeting);
  thread_ = std::thread([this] { Serve(); });
}

void ScriptedQmpServer::SendLine(const std::string& line) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string data = line + "\n";
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd_.get(), data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

void ScriptedQmpServer::SendEvent(const std::string& name, const json& data) {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
  json ev = {{"event", name},
             {"data", data},
             {"timestamp", {{"seconds", us / 1'000'000}, {"microseconds", us % 1'000'000}}}};
  SendLine(ev.dump());
}

void ScriptedQmpServer::CloseConnection() { ::shutdown(fd_.get(), SHUT_RDWR); }

std::vector<json> ScriptedQmpServer::received() const {
  std::lock_guard<std::mutex> lock(mu_);
  return received_;
}

bool ScriptedQmpServer::WaitForCommands(size_t n) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::seconds(5), [&] { return received_.size() >= n; });
}

void ScriptedQmpServer::Serve() {
  std::string buf;
  char chunk[4096];
  while (true) {
    ssize_t n = ::read(fd_.get(), chunk, sizeof(chunk));
    if (n <= 0) return;
    buf.append(chunk, static_cast<size_t>(n));
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      json msg = json::parse(buf.substr(0, nl), nullptr, false);
      buf.erase(0, nl + 1);
      if (!msg.is_object()) continue;
      std::string name = msg.value("execute", "");
      json args = msg.value("arguments", json::object());
      Handler handler;
      {
        std::lock_guard<std::mutex> lock(mu_);
        received_.push_back({{"execute", name}, {"arguments", args}});
        if (auto it = handlers_.find(name); it != handlers_.end()) handler = it->second;
      }
      cv_.notify_all();
      json reply = handler ? handler(args)
                           : json{{"error",
                                   {{"class", "CommandNotFound"},
                                    {"desc", "The command " + name + " has not been found"}}}};
      if (reply.is_null()) continue;
      if (msg.contains("id")) reply["id"] = msg["id"];
      SendLine(reply.dump());
    }
  }
}

}  // namespace kuasar::vmm::testing
