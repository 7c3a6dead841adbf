#include "runtime/guest/testing/container_fixture.h"

#include <google/protobuf/empty.pb.h>
#include <unistd.h>

#include <algorithm>

#include "kuasar/agent/v1/agent.pb.h"
#include "runtime/base/status_macros.h"
#include "runtime/oci/testing/test_bundle.h"

namespace kuasar::guest::testing {

using google::protobuf::Empty;

std::string ContainersUnavailableReason() {
  if (::geteuid() != 0) return "needs root";
  std::string why = AgentUnavailableReason();
  if (!why.empty()) return why;
  if (::access((kuasar::testing::TestRootfs() + "/testinit").c_str(), X_OK) != 0) {
    return "the test rootfs is missing (ninja kuasar-test-rootfs)";
  }
  return "";
}

void AgentContainerTest::SetUp() {
  std::string why = ContainersUnavailableReason();
  if (!why.empty()) GTEST_SKIP() << why;
  bundles_ = std::make_unique<TempDir>("kuasar-bundles");
  StartAgent(options());
}

void AgentContainerTest::StartAgent(AgentProcessOptions o) {
  auto a = AgentProcess::Start(std::move(o));
  ASSERT_TRUE(a.ok()) << a.status();
  agent_ = std::move(*a);
}

void AgentContainerTest::TearDown() {
  if (!agent_) return;
  for (const auto& id : created_) {
    (void)Kill(id, SIGKILL);
    (void)Delete(id);
  }
  auto code = agent_->Stop();
  EXPECT_TRUE(code.ok() && *code == 0) << code.status() << "\n" << agent_->Log();
  agent_.reset();
}

absl::StatusOr<task::CreateTaskResponse> AgentContainerTest::Create(
    const std::string& id, const std::vector<std::string>& args, const std::string& in,
    const std::string& out, const std::string& err) {
  std::string dir = bundles_->Sub(id);
  kuasar::testing::BundleOptions bo;
  bo.id = id;
  bo.args = args;
  ASSIGN_OR_RETURN(auto rootfs, kuasar::testing::WriteBundle(dir, bo));
  task::CreateTaskRequest req;
  req.set_id(id);
  req.set_bundle(dir);
  req.set_stdin(in);
  req.set_stdout(out);
  req.set_stderr(err);
  for (const auto& m : rootfs) {
    auto* pm = req.add_rootfs();
    pm->set_type(m.type);
    pm->set_source(m.source);
    for (const auto& o : m.options) pm->add_options(o);
  }
  auto r = Call<task::CreateTaskResponse>(agent_->client(), kTaskService, "Create", req);
  if (r.ok()) created_.push_back(id);
  return r;
}

absl::Status AgentContainerTest::Start(const std::string& id, const std::string& exec_id) {
  task::StartRequest req;
  req.set_id(id);
  req.set_exec_id(exec_id);
  return Call<task::StartResponse>(agent_->client(), kTaskService, "Start", req).status();
}

absl::StatusOr<uint32_t> AgentContainerTest::Wait(const std::string& id,
                                                  const std::string& exec_id) {
  task::WaitRequest req;
  req.set_id(id);
  req.set_exec_id(exec_id);
  ASSIGN_OR_RETURN(auto r, Call<task::WaitResponse>(agent_->client(), kTaskService, "Wait", req,
                                                    absl::Seconds(30)));
  return r.exit_status();
}

absl::Status AgentContainerTest::Delete(const std::string& id, const std::string& exec_id) {
  task::DeleteRequest req;
  req.set_id(id);
  req.set_exec_id(exec_id);
  absl::Status st =
      Call<task::DeleteResponse>(agent_->client(), kTaskService, "Delete", req).status();
  if (st.ok() && exec_id.empty()) std::erase(created_, id);
  return st;
}

absl::Status AgentContainerTest::Exec(const std::string& id, const std::string& exec_id,
                                      const std::vector<std::string>& args,
                                      const std::string& stdout_uri) {
  task::ExecProcessRequest req;
  req.set_id(id);
  req.set_exec_id(exec_id);
  req.set_stdout(stdout_uri);
  req.mutable_spec()->set_type_url("types.containerd.io/opencontainers/runtime-spec/1/Process");
  req.mutable_spec()->set_value(kuasar::testing::ProcessJson(args, false));
  return Call<Empty>(agent_->client(), kTaskService, "Exec", req).status();
}

absl::Status AgentContainerTest::Kill(const std::string& id, int signal,
                                      const std::string& exec_id) {
  task::KillRequest req;
  req.set_id(id);
  req.set_exec_id(exec_id);
  req.set_signal(static_cast<uint32_t>(signal));
  return Call<Empty>(agent_->client(), kTaskService, "Kill", req).status();
}

absl::StatusOr<std::string> AgentContainerTest::ReadStream(const std::string& token) {
  agent::v1::ReadStreamRequest req;
  req.set_token(token);
  ttrpc::CallOptions o;
  o.timeout = std::chrono::seconds(30);
  ASSIGN_OR_RETURN(
      auto s, agent_->client().NewStream("kuasar.agent.v1.Sandbox", "ReadStream",
                                         {.server_streaming = true}, req.SerializeAsString(), o));
  std::string out;
  agent::v1::StreamChunk chunk;
  while (true) {
    ASSIGN_OR_RETURN(bool more, s->RecvMessage(&chunk));
    if (!more) break;
    out += chunk.data();
  }
  RETURN_IF_ERROR(s->Finish());
  return out;
}

absl::Status AgentContainerTest::WriteStream(const std::string& token,
                                             const std::vector<std::string>& chunks) {
  ttrpc::CallOptions o;
  o.timeout = std::chrono::seconds(30);
  ASSIGN_OR_RETURN(auto s, agent_->client().NewStream("kuasar.agent.v1.Sandbox", "WriteStream",
                                                      {.client_streaming = true}, {}, o));
  for (size_t i = 0; i < std::max<size_t>(chunks.size(), 1); ++i) {
    agent::v1::StreamChunk c;
    if (i == 0) c.set_token(token);  // only the first chunk names it
    if (i < chunks.size()) c.set_data(chunks[i]);
    RETURN_IF_ERROR(s->SendMessage(c));
  }
  RETURN_IF_ERROR(s->CloseSend());
  return s->Finish();
}

}  // namespace kuasar::guest::testing
