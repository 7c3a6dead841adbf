// RestFront sits between the HTTP server and a personality's REST API: it serves the
// simulator's fault API (GET/PUT /kuasar/faults), refuses or delays calls as the fault
// plan says (a refusal has the VMM's own error shape), and passes the rest on.
// One io_context thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>

#include "sim/common/fault_injector.h"
#include "sim/common/rest_types.h"

namespace kuasar::sim {

inline constexpr std::string_view kFaultsPath = "/kuasar/faults";

class RestFront : public RestHandler {
 public:
  using Dispatch = std::function<RestReply(const RestRequest&)>;
  using Refusal = std::function<RestReply(const FaultRule&, const RestRequest&)>;

  RestFront(boost::asio::io_context& io, FaultInjector& faults, Dispatch dispatch, Refusal refusal)
      : io_(io), faults_(faults), dispatch_(std::move(dispatch)), refusal_(std::move(refusal)) {}

  void Handle(RestRequest request, std::function<void(RestReply)> done) override;

  // Synchronous, fault-free path (fuzzing): the fault API and dispatch, no delays.
  RestReply HandleNow(const RestRequest& request);

 private:
  RestReply FaultApi(const RestRequest& request);

  boost::asio::io_context& io_;
  FaultInjector& faults_;
  Dispatch dispatch_;
  Refusal refusal_;
};

}  // namespace kuasar::sim
