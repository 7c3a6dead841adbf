// Typed registration for protobuf methods on a ttrpc Server:
//   RegisterMethod<Req, Resp>(server, svc, "Get", [](const CallContext&, const Req&)
//       -> absl::StatusOr<Resp> {...});                 // runs on the worker pool
//   RegisterAsyncMethod<Req, Resp>(server, svc, "Wait", [](CallContextPtr, Req,
//       TypedResponder<Resp>) {...});                   // completes whenever it likes
// A request that does not parse fails with INTERNAL, as Go ttrpc's unmarshal does.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/ttrpc/server.h"

namespace kuasar::ttrpc {

inline absl::Status UnmarshalError(std::string_view type_name) {
  return absl::InternalError(
      std::string("ttrpc: error unmarshalling payload: cannot parse ").append(type_name));
}

template <typename Resp>
class TypedResponder {
 public:
  explicit TypedResponder(UnaryResponder responder) : responder_(std::move(responder)) {}
  void Finish(const absl::StatusOr<Resp>& response) const {
    if (!response.ok()) {
      responder_.Finish(response.status());
    } else {
      responder_.Finish(response->SerializeAsString());
    }
  }
  bool finished() const { return responder_.finished(); }

 private:
  UnaryResponder responder_;
};

template <typename Req, typename Resp, typename Fn>
absl::Status RegisterMethod(Server& server, std::string_view service, std::string_view method,
                            Fn fn) {
  return server.RegisterBlockingUnary(
      service, method,
      [fn = std::move(fn)](const CallContext& ctx,
                           const std::string& payload) -> absl::StatusOr<std::string> {
        Req req;
        if (!req.ParseFromString(payload)) return UnmarshalError(req.GetTypeName());
        absl::StatusOr<Resp> resp = fn(ctx, req);
        if (!resp.ok()) return resp.status();
        return resp->SerializeAsString();
      });
}

template <typename Req, typename Resp, typename Fn>
absl::Status RegisterAsyncMethod(Server& server, std::string_view service,
                                 std::string_view method, Fn fn) {
  return server.RegisterUnary(
      service, method,
      [fn = std::move(fn)](CallContextPtr ctx, std::string payload, UnaryResponder responder) {
        Req req;
        if (!req.ParseFromString(payload)) {
          responder.Finish(UnmarshalError(req.GetTypeName()));
          return;
        }
        fn(std::move(ctx), std::move(req), TypedResponder<Resp>(std::move(responder)));
      });
}

}  // namespace kuasar::ttrpc
