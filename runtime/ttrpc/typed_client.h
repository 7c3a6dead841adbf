// Typed helpers for protobuf methods on a ttrpc Client:
//   absl::StatusOr<Resp> r = CallMethod<Resp>(client, svc, "Get", req, {.timeout = 5s});
//   CallMethodAsync<Resp>(client, svc, "Wait", req, {}, [](absl::StatusOr<Resp> r) {...});
// A response that does not parse fails with INTERNAL.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/ttrpc/client.h"

namespace kuasar::ttrpc {

template <typename Resp>
absl::StatusOr<Resp> ParseResponseAs(absl::StatusOr<std::string> payload) {
  if (!payload.ok()) return payload.status();
  Resp resp;
  if (!resp.ParseFromString(*payload)) {
    return absl::InternalError(
        std::string("ttrpc: cannot parse response as ").append(resp.GetTypeName()));
  }
  return resp;
}

template <typename Resp, typename Req>
absl::StatusOr<Resp> CallMethod(Client& client, std::string_view service, std::string_view method,
                                const Req& request, const CallOptions& options = {}) {
  return ParseResponseAs<Resp>(
      client.Call(service, method, request.SerializeAsString(), options));
}

template <typename Resp, typename Req, typename Fn>
void CallMethodAsync(Client& client, std::string_view service, std::string_view method,
                     const Req& request, const CallOptions& options, Fn done) {
  client.CallAsync(service, method, request.SerializeAsString(), options,
                   [done = std::move(done)](absl::StatusOr<std::string> payload) mutable {
                     done(ParseResponseAs<Resp>(std::move(payload)));
                   });
}

}  // namespace kuasar::ttrpc
