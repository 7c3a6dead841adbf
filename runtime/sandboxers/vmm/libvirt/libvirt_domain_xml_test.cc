// The domain XML, parsed back with libxml2: elements and attributes where libvirt reads
// them, values escaped, and inputs that would make a bad domain refused.
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include <memory>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "runtime/base/status_matchers.h"
#include "runtime/sandboxers/vmm/libvirt/libvirt_domain_xml.h"

namespace kuasar::vmm {
namespace {

using ::kuasar::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kUuid[] = "4d92a37c-baea-4c71-8fcf-9fbc61ae0e5b";

// The parsed document; XPath queries answer with the text of every match.
class Doc {
 public:
  explicit Doc(const std::string& xml)
      : doc_(xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "d.xml", nullptr,
                           XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING),
             xmlFreeDoc) {}
  bool ok() const { return doc_ != nullptr; }
  std::vector<std::string> All(const char* xpath) const {
    std::vector<std::string> out;
    std::unique_ptr<xmlXPathContext, void (*)(xmlXPathContextPtr)> ctx(
        xmlXPathNewContext(doc_.get()), xmlXPathFreeContext);
    std::unique_ptr<xmlXPathObject, void (*)(xmlXPathObjectPtr)> r(
        xmlXPathEvalExpression(reinterpret_cast<const xmlChar*>(xpath), ctx.get()),
        xmlXPathFreeObject);
    if (!r || !r->nodesetval) return out;
    for (int i = 0; i < r->nodesetval->nodeNr; ++i) {
      xmlChar* text = xmlNodeGetContent(r->nodesetval->nodeTab[i]);
      out.emplace_back(reinterpret_cast<const char*>(text));
      xmlFree(text);
    }
    return out;
  }
  std::string One(const char* xpath) const {
    auto all = All(xpath);
    return all.size() == 1 ? all[0] : absl::StrFormat("<%d matches of %s>", all.size(), xpath);
  }

 private:
  std::unique_ptr<xmlDoc, void (*)(xmlDocPtr)> doc_;
};

LibvirtConfig Config() {
  LibvirtConfig c;
  c.qemu_path = "/usr/bin/qemu-system-x86_64";
  return c;
}

VmConfig Vm() {
  VmConfig vm;
  vm.sandbox_id = "pod1";
  vm.state_dir = "/run/kuasar/vmm/sandboxes/pod1";
  vm.socket_dir = "/run/kuasar/vmm/s/ab12";
  vm.kernel_path = "/var/lib/kuasar/vmlinuz";
  vm.initrd_path = "/var/lib/kuasar/initramfs.img";
  vm.vcpus = 2;
  vm.memory_mib = 768;
  return vm;
}

absl::StatusOr<std::string> Build(const LibvirtConfig& c, const VmConfig& vm,
                                  Accel accel = Accel::kTcg) {
  return BuildDomainXml(c, vm, LibvirtPaths::For(vm), accel, kUuid);
}

TEST(LibvirtDomainXmlTest, TheQemuDriversVmAsADomain) {
  auto xml = Build(Config(), Vm());
  ASSERT_OK(xml);
  Doc d(*xml);
  ASSERT_TRUE(d.ok()) << *xml;
  EXPECT_EQ(d.One("/domain/@type"), "qemu");  // TCG
  EXPECT_EQ(d.One("/domain/name"), "kuasar-pod1");
  EXPECT_EQ(d.One("/domain/uuid"), kUuid);
  EXPECT_EQ(d.One("/domain/memory"), "768");
  EXPECT_EQ(d.One("/domain/memory/@unit"), "MiB");
  EXPECT_EQ(d.One("/domain/vcpu"), "2");
  EXPECT_EQ(d.One("/domain/os/type/@machine"), "q35");
  EXPECT_EQ(d.One("/domain/os/kernel"), "/var/lib/kuasar/vmlinuz");
  EXPECT_EQ(d.One("/domain/os/initrd"), "/var/lib/kuasar/initramfs.img");
  std::string cmdline = d.One("/domain/os/cmdline");
  EXPECT_THAT(cmdline, HasSubstr("console=ttyS0"));
  EXPECT_THAT(cmdline, HasSubstr("panic=-1"));
  EXPECT_THAT(cmdline, ::testing::Not(HasSubstr("task.sharefs_type")));
  EXPECT_EQ(d.All("/domain/features/acpi").size(), 1u);
  EXPECT_EQ(d.One("/domain/on_reboot"), "destroy");
  EXPECT_EQ(d.One("/domain/on_crash"), "destroy");
  EXPECT_EQ(d.One("/domain/devices/emulator"), "/usr/bin/qemu-system-x86_64");
  EXPECT_EQ(d.One("/domain/devices/serial[@type='file']/source/@path"),
            "/run/kuasar/vmm/sandboxes/pod1/console.log");
  EXPECT_EQ(d.One("/domain/devices/channel[@type='unix']/source/@mode"), "bind");
  EXPECT_EQ(d.One("/domain/devices/channel/source/@path"), "/run/kuasar/vmm/s/ab12/agent.sock");
  EXPECT_EQ(d.One("/domain/devices/channel/target[@type='virtio']/@name"), "agent.channel.0");
  EXPECT_EQ(d.One("/domain/devices/memballoon/@model"), "none");
  // QEMU as root without relabelling, like the qemu driver's.
  EXPECT_EQ(d.One("/domain/seclabel[@model='dac']/@type"), "static");
  EXPECT_EQ(d.One("/domain/seclabel/@relabel"), "no");
  EXPECT_EQ(d.One("/domain/seclabel/label"), "+0:+0");
  EXPECT_TRUE(d.All("/domain/cpu").empty());
  EXPECT_TRUE(d.All("/domain/memoryBacking").empty());
  EXPECT_TRUE(d.All("/domain/devices/filesystem").empty());
}

TEST(LibvirtDomainXmlTest, KvmPassesTheHostCpuThrough) {
  auto xml = Build(Config(), Vm(), Accel::kKvm);
  ASSERT_OK(xml);
  Doc d(*xml);
  EXPECT_EQ(d.One("/domain/@type"), "kvm");
  EXPECT_EQ(d.One("/domain/cpu/@mode"), "host-passthrough");
  LibvirtConfig c = Config();
  c.cpu_model = "Skylake-Client";
  Doc named(*Build(c, Vm()));
  EXPECT_EQ(named.One("/domain/cpu/model"), "Skylake-Client");
  EXPECT_THAT(Build(Config(), Vm(), Accel::kAuto).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(LibvirtDomainXmlTest, SharedDirNetsAndDisks) {
  VmConfig vm = Vm();
  vm.shared_dir = SharedDir{"/run/kuasar/vmm/sandboxes/pod1/shared", "kuasar", false};
  vm.nets.push_back({"net0", "tap0_kuasar", "AA:BB:CC:DD:EE:01"});
  vm.disks.push_back({"disk0", "/var/lib/kuasar/images/data.img", "qcow2", true});
  vm.disks.push_back({"disk1", "/var/lib/kuasar/images/b.img", "raw", false});
  LibvirtConfig c = Config();
  c.virtiofs_cache = "always";
  auto xml = Build(c, vm);
  ASSERT_OK(xml);
  Doc d(*xml);
  EXPECT_EQ(d.One("/domain/memoryBacking/source/@type"), "memfd");
  EXPECT_EQ(d.One("/domain/memoryBacking/access/@mode"), "shared");
  EXPECT_EQ(d.One("/domain/devices/filesystem/driver/@type"), "virtiofs");
  EXPECT_EQ(d.One("/domain/devices/filesystem/binary/@path"), "/usr/lib/qemu/virtiofsd");
  EXPECT_EQ(d.One("/domain/devices/filesystem/binary/cache/@mode"), "always");
  EXPECT_EQ(d.One("/domain/devices/filesystem/source/@dir"),
            "/run/kuasar/vmm/sandboxes/pod1/shared");
  EXPECT_EQ(d.One("/domain/devices/filesystem/target/@dir"), "kuasar");
  EXPECT_THAT(d.One("/domain/os/cmdline"), HasSubstr("task.sharefs_type=virtiofs"));
  EXPECT_EQ(d.One("/domain/devices/interface[@type='ethernet']/target/@dev"), "tap0_kuasar");
  EXPECT_EQ(d.One("/domain/devices/interface/target/@managed"), "no");
  EXPECT_EQ(d.One("/domain/devices/interface/mac/@address"), "aa:bb:cc:dd:ee:01");
  EXPECT_EQ(d.One("/domain/devices/interface/model/@type"), "virtio");
  EXPECT_EQ(d.One("/domain/devices/interface/alias/@name"), "ua-net0");
  EXPECT_EQ(d.All("/domain/devices/disk").size(), 2u);
  EXPECT_EQ(d.One("/domain/devices/disk[alias/@name='ua-disk0']/driver/@type"), "qcow2");
  EXPECT_EQ(d.One("/domain/devices/disk[alias/@name='ua-disk0']/target/@dev"), "vda");
  EXPECT_EQ(d.All("/domain/devices/disk[alias/@name='ua-disk0']/readonly").size(), 1u);
  EXPECT_EQ(d.One("/domain/devices/disk[alias/@name='ua-disk1']/source/@file"),
            "/var/lib/kuasar/images/b.img");
  EXPECT_EQ(d.One("/domain/devices/disk[alias/@name='ua-disk1']/target/@dev"), "vdb");
  EXPECT_TRUE(d.All("/domain/devices/disk[alias/@name='ua-disk1']/readonly").empty());
}

TEST(LibvirtDomainXmlTest, ValuesAreEscapedNotInterpreted) {
  VmConfig vm = Vm();
  // XML metacharacters in a path and in kernel parameters stay data.
  vm.kernel_path = "/images/a&b<c>'d\"/vmlinuz";
  vm.kernel_params = "task.note=\"</cmdline><kernel>/evil</kernel>\"";
  auto xml = Build(Config(), vm);
  ASSERT_OK(xml);
  EXPECT_FALSE(absl::StrContains(*xml, "<kernel>/evil")) << *xml;
  Doc d(*xml);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.One("/domain/os/kernel"), "/images/a&b<c>'d\"/vmlinuz");
  EXPECT_THAT(d.One("/domain/os/cmdline"), HasSubstr("</cmdline><kernel>/evil</kernel>"));
  EXPECT_EQ(d.All("/domain/os/kernel").size(), 1u);
}

TEST(LibvirtDomainXmlTest, RefusesBadInputs) {
  auto refused = [](auto mutate) {
    VmConfig vm = Vm();
    LibvirtConfig c = Config();
    mutate(vm, c);
    return Build(c, vm).status();
  };
  using Code = absl::StatusCode;
  EXPECT_THAT(refused([](VmConfig& vm, LibvirtConfig&) { vm.sandbox_id = "../etc"; }),
              StatusIs(Code::kInvalidArgument, HasSubstr("sandbox id")));
  EXPECT_THAT(refused([](VmConfig& vm, LibvirtConfig&) { vm.sandbox_id = "a b"; }),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(refused([](VmConfig& vm, LibvirtConfig&) { vm.kernel_path = "vmlinuz"; }),
              StatusIs(Code::kInvalidArgument, HasSubstr("not absolute")));
  EXPECT_THAT(refused([](VmConfig& vm, LibvirtConfig&) { vm.initrd_path = "/a/\n/b"; }),
              StatusIs(Code::kInvalidArgument, HasSubstr("control character")));
  EXPECT_THAT(refused([](VmConfig& vm, LibvirtConfig&) { vm.initrd_path = "/a/../etc/shadow"; }),
              StatusIs(Code::kInvalidArgument, HasSubstr("..")));
  EXPECT_THAT(refused([](VmConfig& vm, LibvirtConfig&) { vm.socket_dir = "/run/a,b"; }),
              StatusIs(Code::kInvalidArgument, HasSubstr("','")));
  EXPECT_THAT(
      refused([](VmConfig& vm, LibvirtConfig&) { vm.state_dir = std::string("/run/\xc3\xa9"); }),
      StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(refused([](VmConfig& vm, LibvirtConfig&) { vm.kernel_params = "a=\x01"; }),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(refused([](VmConfig& vm, LibvirtConfig&) { vm.memory_mib = 16; }),
              StatusIs(Code::kInvalidArgument, HasSubstr("64 MiB")));
  EXPECT_THAT(refused([](VmConfig& vm, LibvirtConfig&) {
                vm.nets.push_back({"net0", "tap0;rm", ""});
              }),
              StatusIs(Code::kInvalidArgument, HasSubstr("tap")));
  EXPECT_THAT(refused([](VmConfig& vm, LibvirtConfig&) {
                vm.disks.push_back({"d0", "/x.img", "vmdk", false});
              }),
              StatusIs(Code::kInvalidArgument, HasSubstr("raw or qcow2")));
  EXPECT_THAT(refused([](VmConfig& vm, LibvirtConfig&) {
                vm.shared_dir = SharedDir{"/s", "kuasar", true};
              }),
              StatusIs(Code::kUnimplemented, HasSubstr("read-only")));
  EXPECT_THAT(refused([](VmConfig& vm, LibvirtConfig& c) {
                vm.shared_dir = SharedDir{"/s", "kuasar", false};
                c.share_fs = ShareFs::kNone;
              }),
              StatusIs(Code::kFailedPrecondition));
  EXPECT_THAT(refused([](VmConfig& vm, LibvirtConfig&) {
                vm.shared_dir = SharedDir{"/s", "<tag>", false};
              }),
              StatusIs(Code::kInvalidArgument, HasSubstr("tag")));
}

TEST(LibvirtDomainXmlTest, ReadsTheAgentChannelStateFromLiveXml) {
  // As libvirt 9.0 returns it once QEMU reported VSERPORT_CHANGE.
  constexpr char kLive[] = R"(<domain type='qemu' id='1'><name>kuasar-pod1</name><devices>
    <channel type='unix'><source mode='bind' path='/s/agent.sock'/>
      <target type='virtio' name='other.port' state='disconnected'/></channel>
    <channel type='unix'><source mode='bind' path='/s/agent.sock'/>
      <target type='virtio' name='agent.channel.0' state='connected'/>
      <alias name='channel0'/></channel></devices></domain>)";
  auto state = VirtioChannelState(kLive, "agent.channel.0");
  ASSERT_OK(state);
  EXPECT_EQ(*state, "connected");
  EXPECT_EQ(*VirtioChannelState(kLive, "other.port"), "disconnected");
  EXPECT_THAT(VirtioChannelState(kLive, "missing").status(),
              StatusIs(absl::StatusCode::kNotFound));
  // Before QEMU reported anything: no state attribute.
  auto none = VirtioChannelState(
      "<domain><devices><channel><target type='virtio' name='agent.channel.0'/></channel>"
      "</devices></domain>",
      "agent.channel.0");
  ASSERT_OK(none);
  EXPECT_FALSE(none->has_value());
  EXPECT_THAT(VirtioChannelState("<domain", "agent.channel.0").status(),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(LibvirtDomainXmlTest, DomainNameComesFromTheValidatedId) {
  EXPECT_EQ(*DomainName("0123abcd"), "kuasar-0123abcd");
  EXPECT_THAT(DomainName("").status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DomainName("a/b").status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kuasar::vmm
