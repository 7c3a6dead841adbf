// A test fixture with a Server serving the interop service on a temp unix socket and a
// Client connected to it, plus small helpers for protobuf wrapper payloads.
#pragma once

#include <google/protobuf/empty.pb.h>
#include <google/protobuf/wrappers.pb.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "runtime/base/status_matchers.h"
#include "runtime/base/temp_dir.h"
#include "runtime/ttrpc/client.h"
#include "runtime/ttrpc/server.h"
#include "runtime/ttrpc/testing/interop_service.h"

namespace kuasar::ttrpc::testing {

inline google::protobuf::StringValue Str(std::string v) {
  google::protobuf::StringValue s;
  s.set_value(std::move(v));
  return s;
}
inline google::protobuf::Int64Value I64(std::int64_t v) {
  google::protobuf::Int64Value s;
  s.set_value(v);
  return s;
}

class TtrpcTest : public ::testing::Test {
 protected:
  virtual ServerOptions MakeServerOptions() { return {}; }

  void SetUp() override {
    server_ = std::make_unique<Server>(MakeServerOptions());
    ASSERT_OK(RegisterInteropService(*server_));
    path_ = dir_.Sub("ttrpc.sock");
    ASSERT_OK(server_->Listen(path_));
    client_ = NewClient();
    ASSERT_NE(client_, nullptr);
  }

  std::unique_ptr<Client> NewClient() {
    auto c = Client::Connect(path_);
    EXPECT_OK(c);
    return c.ok() ? *std::move(c) : nullptr;
  }

  TempDir dir_{"ttrpc"};
  std::string path_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Client> client_;
};

}  // namespace kuasar::ttrpc::testing
