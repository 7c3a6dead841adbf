#include "sim/common/rest_front.h"

#include <boost/asio/steady_timer.hpp>

#include "runtime/base/logging.h"

namespace kuasar::sim {

RestReply RestFront::FaultApi(const RestRequest& req) {
  if (req.method == "GET") return RestReply{200, faults_.Describe().dump(), nullptr};
  if (req.method != "PUT") {
    return RestReply{405, nlohmann::json{{"error", "use GET or PUT"}}.dump(), nullptr};
  }
  nlohmann::json doc = nlohmann::json::parse(req.body, nullptr, false);
  if (doc.is_discarded()) {
    return RestReply{400, nlohmann::json{{"error", "faults: invalid JSON"}}.dump(), nullptr};
  }
  if (absl::Status st = faults_.Apply(doc); !st.ok()) {
    return RestReply{400, nlohmann::json{{"error", std::string(st.message())}}.dump(), nullptr};
  }
  return RestReply{204, "", nullptr};
}

RestReply RestFront::HandleNow(const RestRequest& req) {
  if (req.path == kFaultsPath) return FaultApi(req);
  return dispatch_(req);
}

void RestFront::Handle(RestRequest req, std::function<void(RestReply)> done) {
  if (req.path == kFaultsPath) {
    done(FaultApi(req));
    return;
  }
  int64_t delay = faults_.TakeDelayMs(req.method, req.path);
  const FaultRule* refuse = faults_.TakeRefusal(req.method, req.path);
  std::function<RestReply()> answer;
  if (refuse != nullptr) {
    spdlog::info("op=fault refuse method={} path={}", req.method, req.path);
    answer = [reply = refusal_(*refuse, req)] { return reply; };
  } else {
    answer = [this, req] { return dispatch_(req); };
  }
  if (delay <= 0) {
    done(answer());
    return;
  }
  spdlog::info("op=fault slow method={} path={} ms={}", req.method, req.path, delay);
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, std::chrono::milliseconds(delay));
  timer->async_wait([timer, answer = std::move(answer), done = std::move(done)](auto ec) {
    if (!ec) done(answer());
  });
}

}  // namespace kuasar::sim
