// ScriptedQmpServer: a fake QMP server for tests, on one end of a socketpair (or an
// accepted unix socket). It greets, answers each command through a handler the test
// registers (echoing the id as QEMU does), and sends events when told. One thread
// serves the connection; every method is thread-safe.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/base/unique_fd.h"

namespace kuasar::vmm::testing {

class ScriptedQmpServer {
 public:
  // Returns the whole reply ({"return": ...} or {"error": ...}) for a command's
  // arguments, or null to never answer (a timeout test).
  using Handler = std::function<nlohmann::json(const nlohmann::json& arguments)>;

  explicit ScriptedQmpServer(UniqueFd fd);
  ~ScriptedQmpServer();

  // Before Start. Unregistered commands get CommandNotFound.
  void OnCommand(const std::string& name, Handler handler);
  // `greeting`: the first line sent (empty: send nothing, a handshake timeout test).
  void Start(std::string greeting = DefaultGreeting());
  void SendLine(const std::string& line);
  void SendEvent(const std::string& name, const nlohmann::json& data = nlohmann::json::object());
  void CloseConnection();
  // Every command received, in order (name and arguments).
  std::vector<nlohmann::json> received() const;
  // Waits until `n` commands arrived (or 5 s); false on timeout.
  bool WaitForCommands(size_t n);

  static std::string DefaultGreeting();

 private:
  void Serve();

  UniqueFd fd_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Handler> handlers_;
  std::vector<nlohmann::json> received_;
};

}  // namespace kuasar::vmm::testing
