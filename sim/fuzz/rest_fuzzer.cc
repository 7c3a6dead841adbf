// libFuzzer target: HTTP request bytes through the REST parsing and routing of the Cloud
// Hypervisor and Firecracker personalities (and the simulator's /kuasar/faults), with a
// no-op guest; no sockets. The first byte picks the personality; the rest is one or more
// pipelined HTTP/1.1 requests, so state machines are driven across calls.
#include <boost/asio/io_context.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sim/clh/clh_api.h"
#include "sim/common/fault_injector.h"
#include "sim/common/guest_control.h"
#include "sim/common/http_server.h"
#include "sim/common/rest_front.h"
#include "sim/firecracker/fc_api.h"

namespace {

namespace http = boost::beast::http;
using namespace kuasar::sim;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool clh = (data[0] & 1) == 0;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  boost::asio::io_context io;
  NoopGuest guest;
  FaultPlan plan;
  FaultInjector faults(io, plan, nullptr);
  clh::ClhApi clh_api(guest, /*check_files=*/false, {});
  fc::FcApi fc_api(guest, "fuzz", /*check_files=*/false, {});
  RestFront front(
      io, faults,
      [&](const RestRequest& r) { return clh ? clh_api.Dispatch(r) : fc_api.Dispatch(r); },
      [](const FaultRule&, const RestRequest&) {
        return RestReply{500, "[]", nullptr};
      });
  for (int i = 0; i < 16 && !rest.empty(); ++i) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(1 << 16);
    parser.header_limit(8 * 1024);
    parser.eager(true);
    boost::beast::error_code ec;
    size_t used = parser.put(boost::asio::buffer(rest.data(), rest.size()), ec);
    if (ec || !parser.is_done() || used == 0) break;
    rest.remove_prefix(used);
    http::request<http::string_body> msg = parser.release();
    RestRequest req{std::string(msg.method_string()),
                    PathOf(std::string_view(msg.target().data(), msg.target().size())),
                    std::move(msg.body())};
    RestReply reply = front.HandleNow(req);
    (void)reply;
  }
  // The whole input as one request, through the server's own parse.
  auto one = ParseHttpRequest(rest, 1 << 16);
  if (one.ok()) (void)front.HandleNow(*one);
  return 0;
}
