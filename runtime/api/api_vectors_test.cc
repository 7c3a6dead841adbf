// Proves kuasar's own .proto files speak the upstream wire contracts: every vector in
// testdata/vectors.json was built and encoded by fixtures/api-vectors with the real
// upstream Go types (containerd, CRI, ttrpc, cgroups) and is decoded here with our
// generated messages. A wrong field number, type or name shows up as an unknown field, a
// JSON difference or a re-encoding that differs from Go's bytes. See docs/protocols.md.
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>
#include <google/protobuf/any.pb.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/message.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "containerd/events/task.pb.h"
#include "containerd/runc/options/oci.pb.h"
#include "containerd/services/sandbox/v1/sandbox.pb.h"
#include "containerd/services/ttrpc/events/v1/events.pb.h"
#include "containerd/task/v3/shim.pb.h"
#include "containerd/types/event.pb.h"
#include "containerd/types/metrics.pb.h"
#include "containerd/types/mount.pb.h"
#include "containerd/types/platform.pb.h"
#include "containerd/types/sandbox.pb.h"
#include "containerd/types/task/task.pb.h"
#include "cri/v1/api.pb.h"
#include "google/rpc/status.pb.h"
#include "io/containerd/cgroups/v1/metrics.pb.h"
#include "io/containerd/cgroups/v2/metrics.pb.h"
#include "kuasar/agent/v1/agent.pb.h"
#include "ttrpc/request.pb.h"

namespace kuasar {
namespace {

namespace pb = ::google::protobuf;
using Json = nlohmann::json;

// A .proto's generated code registers its types in generated_pool() only when the linker
// pulls its object out of the kuasar_api archive; naming one message of each file does.
std::vector<const pb::Descriptor*> OneMessagePerApiFile() {
  return {
      ::containerd::events::TaskExit::descriptor(),
      ::containerd::runc::v1::Options::descriptor(),
      ::containerd::services::sandbox::v1::ControllerCreateRequest::descriptor(),
      ::containerd::services::events::ttrpc::v1::ForwardRequest::descriptor(),
      ::containerd::task::v3::CreateTaskRequest::descriptor(),
      ::containerd::types::Envelope::descriptor(),
      ::containerd::types::Metric::descriptor(),
      ::containerd::types::Mount::descriptor(),
      ::containerd::types::Platform::descriptor(),
      ::containerd::types::Sandbox::descriptor(),
      ::containerd::v1::types::Process::descriptor(),
      ::runtime::v1::PodSandboxConfig::descriptor(),
      ::google::rpc::Status::descriptor(),
      ::io::containerd::cgroups::v1::Metrics::descriptor(),
      ::io::containerd::cgroups::v2::Metrics::descriptor(),
      ::ttrpc::Request::descriptor(),
      ::kuasar::agent::v1::CheckRequest::descriptor(),
  };
}

const pb::DescriptorPool& Pool() {
  [[maybe_unused]] static const auto linked = OneMessagePerApiFile();
  return *pb::DescriptorPool::generated_pool();
}

std::unique_ptr<pb::Message> NewMessage(const pb::Descriptor* type) {
  return std::unique_ptr<pb::Message>(
      pb::MessageFactory::generated_factory()->GetPrototype(type)->New());
}

// containerd (typeurl) writes an Any's type URL as the bare full name, e.g.
// "io.containerd.cgroups.v1.Metrics"; protobuf's own convention is
// "type.googleapis.com/<name>". Both resolve here; nullptr when the payload is not a
// protobuf message we know (containerd's JSON-encoded OCI runtime-spec types).
const pb::Descriptor* FindAnyType(std::string_view url) {
  const std::size_t slash = url.rfind('/');
  const std::string name(slash == std::string_view::npos ? url : url.substr(slash + 1));
  return Pool().FindMessageTypeByName(name);
}

std::string SerializeDeterministic(const pb::Message& msg) {
  std::string out;
  {
    pb::io::StringOutputStream stream(&out);
    pb::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    msg.SerializeToCodedStream(&coded);
  }
  return out;
}

// Calls visit(child, path) for every message directly inside `msg` (singular, repeated
// and map entries).
template <typename Msg, typename Visit>
void ForEachChild(Msg& msg, const std::string& path, Visit visit) {
  const pb::Reflection* reflection = msg.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  reflection->ListFields(msg, &fields);
  for (const pb::FieldDescriptor* field : fields) {
    if (field->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    const std::string at = path + "." + field->name();
    if (!field->is_repeated()) {
      if constexpr (std::is_const_v<Msg>) {
        visit(reflection->GetMessage(msg, field), at);
      } else {
        visit(*reflection->MutableMessage(&msg, field), at);
      }
      continue;
    }
    for (int i = 0; i < reflection->FieldSize(msg, field); ++i) {
      const std::string item = absl::StrFormat("%s[%d]", at, i);
      if constexpr (std::is_const_v<Msg>) {
        visit(reflection->GetRepeatedMessage(msg, field, i), item);
      } else {
        visit(*reflection->MutableRepeatedMessage(&msg, field, i), item);
      }
    }
  }
}

// Appends one line per unknown field in msg's tree, looking inside the payload of every
// Any of a known type: an unknown field means our field number differs from upstream's.
void CollectUnknownFields(const pb::Message& msg, const std::string& path,
                          std::vector<std::string>* problems) {
  const pb::UnknownFieldSet& unknown = msg.GetReflection()->GetUnknownFields(msg);
  for (int i = 0; i < unknown.field_count(); ++i) {
    problems->push_back(absl::StrFormat("%s: unknown field number %d", path,
                                        unknown.field(i).number()));
  }
  if (const auto* any = dynamic_cast<const pb::Any*>(&msg)) {
    if (const pb::Descriptor* type = FindAnyType(any->type_url())) {
      std::unique_ptr<pb::Message> payload = NewMessage(type);
      const std::string at = absl::StrFormat("%s<%s>", path, any->type_url());
      if (!payload->ParseFromString(any->value())) {
        problems->push_back(at + ": payload does not parse");
      } else {
        CollectUnknownFields(*payload, at, problems);
      }
    }
    return;
  }
  ForEachChild(msg, path, [&](const pb::Message& child, const std::string& at) {
    CollectUnknownFields(child, at, problems);
  });
}

// Rewrites msg's Anys so that json_util can print them as genvectors printed them with
// protojson: a known payload gets the "type.googleapis.com/" prefix json_util insists on
// (and its own Anys rewritten); an opaque one becomes google.protobuf.Struct
// {type_url, value: base64}, the same substitution genvectors makes.
void PrepareAnysForJson(pb::Message& msg) {
  if (auto* any = dynamic_cast<pb::Any*>(&msg)) {
    const pb::Descriptor* type = FindAnyType(any->type_url());
    if (type == nullptr) {
      pb::Struct opaque;
      (*opaque.mutable_fields())["type_url"].set_string_value(any->type_url());
      (*opaque.mutable_fields())["value"].set_string_value(absl::Base64Escape(any->value()));
      any->PackFrom(opaque);
      return;
    }
    std::unique_ptr<pb::Message> payload = NewMessage(type);
    if (!payload->ParseFromString(any->value())) return;  // reported by CollectUnknownFields
    PrepareAnysForJson(*payload);
    any->set_type_url("type.googleapis.com/" + type->full_name());
    any->set_value(SerializeDeterministic(*payload));
    return;
  }
  ForEachChild(msg, "", [](pb::Message& child, const std::string&) { PrepareAnysForJson(child); });
}

// "@type" values compare by type name: Go prints containerd's bare names, json_util the
// prefixed form.
void NormalizeTypeUrls(Json& json) {
  if (json.is_object()) {
    for (auto& [key, value] : json.items()) {
      if (key == "@type" && value.is_string()) {
        const std::string url = value.get<std::string>();
        value = url.substr(url.rfind('/') + 1);  // npos + 1 == 0: a bare name stays whole
      } else {
        NormalizeTypeUrls(value);
      }
    }
  } else if (json.is_array()) {
    for (Json& item : json) NormalizeTypeUrls(item);
  }
}

bool HexDecode(std::string_view hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  out->clear();
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]);
    const int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi << 4 | lo));
  }
  return true;
}

struct Vector {
  std::string name;
  std::string type;
  std::string hex;
  Json json;
};

void PrintTo(const Vector& v, std::ostream* os) { *os << v.name; }

// Loaded once; empty (and reported by VectorFileTest) when the file is missing or malformed.
const std::vector<Vector>& Vectors() {
  static const std::vector<Vector> vectors = [] {
    std::vector<Vector> out;
    std::ifstream in(KUASAR_API_VECTORS);
    const Json file = Json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!file.is_object() || !file.contains("vectors") || !file["vectors"].is_array()) return out;
    for (const Json& v : file["vectors"]) {
      if (!v.is_object()) continue;
      out.push_back({v.value("name", ""), v.value("type", ""), v.value("hex", ""),
                     v.value("json", Json())});
    }
    return out;
  }();
  return vectors;
}

TEST(VectorFileTest, LoadsWithUniqueNames) {
  const std::vector<Vector>& vectors = Vectors();
  ASSERT_GE(vectors.size(), 40u) << "reading " << KUASAR_API_VECTORS;
  std::set<std::string> names;
  for (const Vector& v : vectors) {
    EXPECT_FALSE(v.name.empty() || v.type.empty() || v.hex.empty()) << v.name;
    EXPECT_TRUE(names.insert(v.name).second) << "duplicate vector " << v.name;
  }
}

// Every .proto under runtime/api (the folder above testdata/) must be linked in, so that
// vectors and Any payloads of its types resolve; extend OneMessagePerApiFile otherwise.
TEST(VectorFileTest, EveryApiProtoIsInTheGeneratedPool) {
  const std::filesystem::path root =
      std::filesystem::path(KUASAR_API_VECTORS).parent_path().parent_path();
  int files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (entry.path().extension() != ".proto") continue;
    ++files;
    const std::string name = entry.path().lexically_relative(root).generic_string();
    EXPECT_NE(Pool().FindFileByName(name), nullptr) << name << " is not linked into the test";
  }
  EXPECT_GE(files, 16);
}

class ApiVectorTest : public ::testing::TestWithParam<Vector> {};

TEST_P(ApiVectorTest, DecodesLikeUpstream) {
  const Vector& v = GetParam();
  const pb::Descriptor* type = Pool().FindMessageTypeByName(v.type);
  ASSERT_NE(type, nullptr) << v.type << " is not in the generated pool";
  std::string wire;
  ASSERT_TRUE(HexDecode(v.hex, &wire)) << "bad hex";

  // (a) Our message parses Go's bytes.
  std::unique_ptr<pb::Message> msg = NewMessage(type);
  ASSERT_TRUE(msg->ParseFromString(wire));

  // (b) Nothing lands in unknown fields, Any payloads included.
  std::vector<std::string> unknown;
  CollectUnknownFields(*msg, v.type, &unknown);
  EXPECT_TRUE(unknown.empty()) << ::testing::PrintToString(unknown);

  // (c) Our JSON rendering equals Go's protojson, field names and values alike.
  std::unique_ptr<pb::Message> printable(msg->New());
  printable->CopyFrom(*msg);
  PrepareAnysForJson(*printable);
  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string text;
  const pb::util::Status printed = pb::util::MessageToJsonString(*printable, &text, options);
  ASSERT_TRUE(printed.ok()) << printed.ToString();
  Json ours = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(ours.is_discarded()) << text;
  Json expected = v.json;
  NormalizeTypeUrls(ours);
  NormalizeTypeUrls(expected);
  EXPECT_TRUE(ours == expected) << "JSON patch from Go's form to ours:\n"
                                << Json::diff(expected, ours).dump(2);

  // (d) Re-encoding round-trips, and byte for byte matches Go's deterministic encoding.
  const std::string again = SerializeDeterministic(*msg);
  std::unique_ptr<pb::Message> reparsed(msg->New());
  ASSERT_TRUE(reparsed->ParseFromString(again));
  std::string report;
  pb::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&report);
  {
    // The differencer tries to unpack every Any and logs each opaque (runtime-spec) one.
    pb::LogSilencer quiet;
    EXPECT_TRUE(differencer.Compare(*msg, *reparsed)) << report;
  }
  if (again != wire) {
    const auto first = std::mismatch(again.begin(), again.end(), wire.begin(), wire.end()).first;
    ADD_FAILURE() << "our encoding (" << again.size() << " bytes) differs from Go's ("
                  << wire.size() << " bytes) from byte " << (first - again.begin())
                  << "; ours: " << absl::BytesToHexString(again);
  }
}

std::string VectorTestName(const ::testing::TestParamInfo<Vector>& info) {
  std::string name = info.param.name;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Recorded, ApiVectorTest, ::testing::ValuesIn(Vectors()), VectorTestName);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ApiVectorTest);

}  // namespace
}  // namespace kuasar
