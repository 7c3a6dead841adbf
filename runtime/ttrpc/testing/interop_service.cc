#include "runtime/ttrpc/testing/interop_service.h"

#include <google/protobuf/empty.pb.h>
#include <google/protobuf/wrappers.pb.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/base/status_macros.h"
#include "runtime/ttrpc/typed_server.h"

namespace kuasar::ttrpc::testing {
namespace {

using google::protobuf::Empty;
using google::protobuf::Int32Value;
using google::protobuf::Int64Value;
using google::protobuf::StringValue;

absl::StatusOr<StringValue> Fail(const CallContext&, const StringValue& req) {
  const std::string& v = req.value();
  auto colon = v.find(':');
  int code = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(v.substr(0, colon), &code) || code == 0) {
    return absl::InvalidArgumentError("want CODE:message, got " + v);
  }
  return absl::Status(static_cast<absl::StatusCode>(code), v.substr(colon + 1));
}

absl::StatusOr<StringValue> MetadataOf(const CallContext& ctx, const Empty&) {
  std::vector<std::string> pairs;
  for (const auto& [k, v] : ctx.metadata()) pairs.push_back(absl::StrCat(k, "=", v));
  std::sort(pairs.begin(), pairs.end());
  StringValue out;
  out.set_value(absl::StrJoin(pairs, ";"));
  return out;
}

absl::StatusOr<Empty> Sleep(const CallContext& ctx, const Int64Value& req) {
  if (ctx.WaitForCancel(std::chrono::milliseconds(req.value()))) return ctx.CancelStatus();
  return Empty();
}

absl::StatusOr<Int64Value> Deadline(const CallContext& ctx, const Empty&) {
  Int64Value out;
  out.set_value(-1);
  if (auto dl = ctx.deadline()) {
    out.set_value(std::chrono::duration_cast<std::chrono::milliseconds>(
                      *dl - std::chrono::steady_clock::now())
                      .count());
  }
  return out;
}

absl::StatusOr<std::string> ServerStreamHandler(ServerStream& stream) {
  Int32Value n;
  ASSIGN_OR_RETURN(bool got, stream.RecvMessage(&n));
  if (!got) return absl::InvalidArgumentError("no request");
  for (int i = 0; i < n.value(); ++i) {
    StringValue msg;
    msg.set_value(absl::StrCat("msg-", i));
    RETURN_IF_ERROR(stream.SendMessage(msg));
  }
  return std::string();
}

absl::StatusOr<std::string> ClientStreamHandler(ServerStream& stream) {
  std::vector<std::string> parts;
  StringValue msg;
  for (;;) {
    ASSIGN_OR_RETURN(bool got, stream.RecvMessage(&msg));
    if (!got) break;
    parts.push_back(msg.value());
  }
  RETURN_IF_ERROR(stream.context().CancelStatus());
  StringValue out;
  out.set_value(absl::StrJoin(parts, ","));
  return out.SerializeAsString();
}

absl::StatusOr<std::string> BidiHandler(ServerStream& stream) {
  StringValue msg;
  for (;;) {
    ASSIGN_OR_RETURN(bool got, stream.RecvMessage(&msg));
    if (!got) break;
    msg.set_value("echo:" + msg.value());
    RETURN_IF_ERROR(stream.SendMessage(msg));
  }
  RETURN_IF_ERROR(stream.context().CancelStatus());
  return std::string();
}

}  // namespace

absl::Status RegisterInteropService(Server& server) {
  // Echo answers inline on the io thread, through the async path.
  RETURN_IF_ERROR((RegisterAsyncMethod<StringValue, StringValue>(
      server, kInteropService, "Echo",
      [](CallContextPtr, StringValue req, TypedResponder<StringValue> done) {
        done.Finish(std::move(req));
      })));
  RETURN_IF_ERROR((RegisterMethod<StringValue, StringValue>(server, kInteropService, "Fail", Fail)));
  RETURN_IF_ERROR(
      (RegisterMethod<Empty, StringValue>(server, kInteropService, "Metadata", MetadataOf)));
  RETURN_IF_ERROR((RegisterMethod<Int64Value, Empty>(server, kInteropService, "Sleep", Sleep)));
  RETURN_IF_ERROR(
      (RegisterMethod<Empty, Int64Value>(server, kInteropService, "Deadline", Deadline)));
  RETURN_IF_ERROR(server.RegisterStream(kInteropService, "ServerStream",
                                        {.client_streaming = false, .server_streaming = true},
                                        ServerStreamHandler));
  RETURN_IF_ERROR(server.RegisterStream(kInteropService, "ClientStream",
                                        {.client_streaming = true, .server_streaming = false},
                                        ClientStreamHandler));
  return server.RegisterStream(kInteropService, "Bidi",
                               {.client_streaming = true, .server_streaming = true}, BidiHandler);
}

}  // namespace kuasar::ttrpc::testing
