// The REST shapes shared by the Cloud Hypervisor and Firecracker personalities: a parsed
// request, a reply, and the handler interface the HTTP server calls. Plain data.
#pragma once

#include <functional>
#include <string>

namespace kuasar::sim {

struct RestRequest {
  std::string method;  // "GET", "PUT", "PATCH", ...
  std::string path;    // the target without its query string
  std::string body;    // empty = no body (micro_http treats Content-Length: 0 so too)
};

struct RestReply {
  int status = 204;
  std::string body;                  // sent with Content-Type: application/json when set
  std::function<void()> after_sent;  // e.g. exit the VMM once vmm.shutdown is answered
};

// Called on the io thread; `done` may be called later (slow-call faults) but exactly once.
class RestHandler {
 public:
  virtual ~RestHandler() = default;
  virtual void Handle(RestRequest request, std::function<void(RestReply)> done) = 0;
};

}  // namespace kuasar::sim
