// RestClient against a scripted HTTP server on a unix socket: the request on the wire,
// answers with and without bodies, both VMMs' error bodies, and the transport failures.
#include "runtime/sandboxers/vmm/rest/rest_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/base/unique_fd.h"

namespace kuasar::vmm {
namespace {

using ::kuasar::testing::StatusIs;
using nlohmann::json;
using ::testing::HasSubstr;

// Accepts one connection, reads one request (headers + Content-Length body), answers
// `response` verbatim (or nothing, holding the connection, when `hang`).
class OneShotServer {
 public:
  OneShotServer(const std::string& path, std::string response, bool hang = false)
      : response_(std::move(response)), hang_(hang) {
    listener_.Reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(listener_.get(), 4), 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~OneShotServer() {
    ::shutdown(listener_.get(), SHUT_RDWR);
    thread_.join();
  }
  std::string request() {
    thread_.join();
    thread_ = std::thread([] {});
    return request_;
  }

 private:
  void Serve() {
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) return;
    char buf[4096];
    while (true) {
      size_t end = request_.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t length = 0;
        if (size_t at = request_.find("Content-Length: "); at != std::string::npos) {
          length = std::stoul(request_.substr(at + 16));
        }
        if (request_.size() >= end + 4 + length) break;
      }
      ssize_t n = ::read(conn.get(), buf, sizeof(buf));
      if (n <= 0) return;
      request_.append(buf, static_cast<size_t>(n));
    }
    if (hang_) {
      ::read(conn.get(), buf, sizeof(buf));  // until the client gives up
      return;
    }
    (void)!::write(conn.get(), response_.data(), response_.size());
  }

  UniqueFd listener_;
  std::string response_;
  bool hang_;
  std::string request_;
  std::thread thread_;
};

class RestClientTest : public ::testing::Test {
 protected:
  std::string Socket() const { return dir_.Sub("api.sock"); }
  TempDir dir_{"rest"};
};

TEST_F(RestClientTest, PutsJsonAndReadsNoContent) {
  OneShotServer server(Socket(), "HTTP/1.1 204 No Content\r\nServer: Cloud Hypervisor API\r\n\r\n");
  RestClient client(Socket());
  auto r = client.Call("PUT", "/api/v1/vm.create", json{{"cpus", {{"boot_vcpus", 1}}}});
  ASSERT_OK(r);
  EXPECT_TRUE(r->is_null());
  std::string req = server.request();
  EXPECT_THAT(req, HasSubstr("PUT /api/v1/vm.create HTTP/1.1\r\n"));
  EXPECT_THAT(req, HasSubstr("Host: localhost\r\n"));
  EXPECT_THAT(req, HasSubstr("Content-Type: application/json\r\n"));
  EXPECT_THAT(req, HasSubstr("Accept: application/json\r\n"));
  EXPECT_THAT(req, HasSubstr("Content-Length: 25\r\n"));
  EXPECT_THAT(req, ::testing::EndsWith("\r\n\r\n{\"cpus\":{\"boot_vcpus\":1}}"));
}

TEST_F(RestClientTest, BodylessPutSendsNoBody) {
  OneShotServer server(Socket(), "HTTP/1.1 204 No Content\r\n\r\n");
  ASSERT_OK(RestClient(Socket()).Call("PUT", "/api/v1/vm.boot"));
  std::string req = server.request();
  EXPECT_THAT(req, ::testing::Not(HasSubstr("Content-Type")));
  EXPECT_THAT(req, ::testing::EndsWith("\r\n\r\n"));
}

TEST_F(RestClientTest, ParsesJsonAnswers) {
  std::string body = R"({"version":"v40.0","pid":42})";
  OneShotServer server(Socket(),
                       "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       "Content-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n" + body);
  auto r = RestClient(Socket()).Call("GET", "/api/v1/vmm.ping");
  ASSERT_OK(r);
  EXPECT_EQ((*r)["pid"], 42);
}

TEST_F(RestClientTest, CloudHypervisorErrorChainBecomesTheMessage) {
  std::string body = R"(["Error from API","The VM could not boot","VM config is missing"])";
  OneShotServer server(Socket(), "HTTP/1.1 404 Not Found\r\nContent-Length: " +
                                     std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_THAT(RestClient(Socket()).Call("PUT", "/api/v1/vm.boot"),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("PUT /api/v1/vm.boot: HTTP 404: Error from API: The VM could not "
                                 "boot: VM config is missing")));
}

TEST_F(RestClientTest, FirecrackerFaultMessageBecomesTheMessage) {
  std::string body = R"({"fault_message":"The kernel file cannot be opened"})";
  OneShotServer server(Socket(), "HTTP/1.1 400 Bad Request\r\nContent-Length: " +
                                     std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_THAT(RestClient(Socket()).Call("PUT", "/boot-source", json::object()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("HTTP 400: The kernel file cannot be opened")));
}

TEST_F(RestClientTest, NoListenerIsUnavailable) {
  EXPECT_THAT(RestClient(Socket()).Call("GET", "/"), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(RestClientTest, SilentServerTimesOut) {
  OneShotServer server(Socket(), "", /*hang=*/true);
  absl::Time start = absl::Now();
  EXPECT_THAT(RestClient(Socket()).Call("GET", "/", std::nullopt, absl::Milliseconds(200)),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("read from")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(RestClientTest, GarbageIsInternal) {
  OneShotServer server(Socket(), "SSH-2.0-OpenSSH\r\n\r\n");
  EXPECT_THAT(RestClient(Socket()).Call("GET", "/"), StatusIs(absl::StatusCode::kInternal));
}

// A Content-Length over the 4 MiB limit ends the call at the head. Boost 1.74's eager read
// went on into the body and reserved what the head announced (the rest_response_fuzzer's
// out-of-memory); a length just under std::string's max_size makes that reservation throw
// through the io loop, so the old code could not pass this.
TEST_F(RestClientTest, AnnouncedBodyOverTheLimitIsRefusedBeforeItIsStored) {
  for (std::string status : {"200 OK", "400 Bad Request"}) {
    SCOPED_TRACE(status);
    OneShotServer server(Socket(), "HTTP/1.1 " + status +
                                       "\r\nContent-Length: 4611686018427387000\r\n\r\n"
                                       "[\"Error\"]");
    EXPECT_THAT(RestClient(Socket()).Call("PUT", "/api/v1/vm.add-net", json::object()),
                StatusIs(absl::StatusCode::kInternal, HasSubstr("body limit")));
    ::unlink(Socket().c_str());
  }
}

TEST_F(RestClientTest, WaitUntilAnsweringStopsWhenToldTo) {
  RestClient client(Socket());
  int calls = 0;
  absl::Status st = client.WaitUntilAnswering("/", absl::Now() + absl::Seconds(5), [&] {
    return ++calls < 3 ? absl::OkStatus() : absl::FailedPreconditionError("vmm died");
  });
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("vmm died")));
  EXPECT_THAT(client.WaitUntilAnswering("/", absl::Now() + absl::Milliseconds(50)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST(ErrorBodyTest, Shapes) {
  EXPECT_EQ(ErrorMessageFromBody(R"(["a","b"])"), "a: b");
  EXPECT_EQ(ErrorMessageFromBody(R"({"error":"x"})"), "x");
  EXPECT_EQ(ErrorMessageFromBody("  plain text\n"), "plain text");
  EXPECT_EQ(ErrorMessageFromBody(""), "(no error body)");
  EXPECT_EQ(ErrorMessageFromBody(std::string(1000, 'x')).size(), 512u);
  EXPECT_THAT(HttpErrorToStatus("PUT", "/x", 500, "[]"), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(HttpErrorToStatus("PUT", "/x", 405, ""),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(HttpErrorToStatus("PUT", "/x", 409, ""), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(HttpErrorToStatus("PUT", "/x", 503, ""), StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace kuasar::vmm
