#include "runtime/sandboxers/vmm/libvirt/libvirt_domain_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>
#include <sys/stat.h>

#include <memory>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "runtime/base/id_check.h"
#include "runtime/base/status_macros.h"
#include "runtime/sandboxers/vmm/common/kernel_cmdline.h"
#include "runtime/sandboxers/vmm/qemu/qemu_command_line.h"

namespace kuasar::vmm {
namespace {

const xmlChar* X(const char* s) { return reinterpret_cast<const xmlChar*>(s); }

void InitLibxml() {
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });
}

// xmlTextWriter into memory; the first failing call is remembered and reported by Finish.
class XmlOut {
 public:
  XmlOut() : buffer_(xmlBufferCreate()) {
    writer_ = buffer_ ? xmlNewTextWriterMemory(buffer_, 0) : nullptr;
    ok_ = writer_ != nullptr;
    if (ok_) {
      Check(xmlTextWriterSetIndent(writer_, 1));
      Check(xmlTextWriterSetIndentString(writer_, X("  ")));
    }
  }
  ~XmlOut() {
    if (writer_) xmlFreeTextWriter(writer_);
    if (buffer_) xmlBufferFree(buffer_);
  }
  XmlOut(const XmlOut&) = delete;
  XmlOut& operator=(const XmlOut&) = delete;

  XmlOut& Start(const char* name) {
    if (ok_) Check(xmlTextWriterStartElement(writer_, X(name)));
    return *this;
  }
  XmlOut& Attr(const char* name, const std::string& value) {
    if (ok_) Check(xmlTextWriterWriteAttribute(writer_, X(name), X(value.c_str())));
    return *this;
  }
  XmlOut& Text(const std::string& text) {
    if (ok_) Check(xmlTextWriterWriteString(writer_, X(text.c_str())));
    return *this;
  }
  XmlOut& End() {
    if (ok_) Check(xmlTextWriterEndElement(writer_));
    return *this;
  }
  // <name>text</name>
  XmlOut& Element(const char* name, const std::string& text) {
    return Start(name).Text(text).End();
  }
  // <name attr='value'/>
  XmlOut& Empty(const char* name, const char* attr, const std::string& value) {
    return Start(name).Attr(attr, value).End();
  }

  absl::StatusOr<std::string> Finish() {
    if (ok_) Check(xmlTextWriterEndDocument(writer_));
    if (!ok_) return absl::InternalError("libxml2: writing the domain XML failed");
    xmlFreeTextWriter(writer_);  // flushes into buffer_
    writer_ = nullptr;
    return std::string(reinterpret_cast<const char*>(xmlBufferContent(buffer_)),
                       static_cast<size_t>(xmlBufferLength(buffer_)));
  }

 private:
  void Check(int rc) { ok_ = ok_ && rc >= 0; }

  xmlBufferPtr buffer_;
  xmlTextWriterPtr writer_ = nullptr;
  bool ok_ = false;
};

// XML 1.0 cannot carry most control characters; libvirt would refuse the document.
absl::Status CheckPrintable(std::string_view s, std::string_view what) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s contains a control character (0x%02x)", what, u));
    }
  }
  return absl::OkStatus();
}

bool IsBlockDevice(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
}

absl::Status WriteShare(const LibvirtConfig& config, const SharedDir& dir, XmlOut& x) {
  if (config.share_fs != ShareFs::kVirtioFs) {
    return absl::FailedPreconditionError(
        "the VM asks for a shared dir but [hypervisor] share_fs is \"none\"");
  }
  RETURN_IF_ERROR(CheckDomainPath(dir.host_path, "shared dir"));
  RETURN_IF_ERROR(CheckDomainPath(config.virtiofs_daemon_path, "virtiofs_daemon_path"));
  if (dir.tag.empty() || dir.tag.size() > 36 || !absl::ascii_isalnum(dir.tag[0])) {
    return absl::InvalidArgumentError(absl::StrFormat("bad shared dir tag '%s'", dir.tag));
  }
  RETURN_IF_ERROR(CheckPrintable(dir.tag, "the shared dir tag"));
  if (dir.read_only) {
    // libvirt 9.0 refuses <readonly/> on virtiofs.
    return absl::UnimplementedError("libvirt: a read-only virtio-fs share is not supported");
  }
  x.Start("filesystem").Attr("type", "mount").Attr("accessmode", "passthrough");
  x.Start("driver").Attr("type", "virtiofs").Attr("queue", "1024").End();
  x.Start("binary").Attr("path", config.virtiofs_daemon_path);
  if (!config.virtiofs_cache.empty()) x.Empty("cache", "mode", config.virtiofs_cache);
  x.End();
  x.Empty("source", "dir", dir.host_path);
  x.Empty("target", "dir", dir.tag);
  x.End();
  return absl::OkStatus();
}

absl::Status WriteNet(const NetDevice& net, XmlOut& x) {
  RETURN_IF_ERROR(CheckNetDevice(net));  // id, tap and MAC syntax as the qemu driver's
  x.Start("interface").Attr("type", "ethernet");
  if (!net.mac.empty()) x.Empty("mac", "address", absl::AsciiStrToLower(net.mac));
  x.Start("target").Attr("dev", net.tap).Attr("managed", "no").End();
  x.Empty("model", "type", "virtio");
  x.Empty("alias", "name", "ua-" + net.id);  // libvirt keeps user aliases under "ua-"
  x.End();
  return absl::OkStatus();
}

absl::Status WriteDisk(const DiskDevice& disk, size_t index, XmlOut& x) {
  RETURN_IF_ERROR(CheckDiskDevice(disk));
  RETURN_IF_ERROR(CheckDomainPath(disk.path, absl::StrFormat("disk %s", disk.id)));
  if (index >= 26) return absl::InvalidArgumentError("at most 26 disks (vda..vdz)");
  bool block = IsBlockDevice(disk.path);
  x.Start("disk").Attr("type", block ? "block" : "file").Attr("device", "disk");
  x.Start("driver").Attr("name", "qemu").Attr("type", disk.format).End();
  x.Empty("source", block ? "dev" : "file", disk.path);
  x.Start("target")
      .Attr("dev", std::string("vd") + static_cast<char>('a' + index))
      .Attr("bus", "virtio")
      .End();
  if (disk.read_only) x.Start("readonly").End();
  x.Empty("alias", "name", "ua-" + disk.id);
  x.End();
  return absl::OkStatus();
}

struct DocDeleter {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};

const xmlNode* Child(const xmlNode* parent, const char* name) {
  for (const xmlNode* n = parent ? parent->children : nullptr; n; n = n->next) {
    if (n->type == XML_ELEMENT_NODE && xmlStrEqual(n->name, X(name))) return n;
  }
  return nullptr;
}

std::optional<std::string> Prop(const xmlNode* node, const char* name) {
  xmlChar* v = xmlGetProp(node, X(name));
  if (v == nullptr) return std::nullopt;
  std::string out(reinterpret_cast<const char*>(v));
  xmlFree(v);
  return out;
}

}  // namespace

LibvirtPaths LibvirtPaths::For(const VmConfig& vm) {
  LibvirtPaths p;
  p.agent_socket = vm.socket_dir + "/agent.sock";
  p.console_log = vm.state_dir + "/console.log";
  return p;
}

absl::StatusOr<std::string> DomainName(std::string_view sandbox_id) {
  RETURN_IF_ERROR(ValidateId(sandbox_id, "sandbox id"));
  return absl::StrFormat("kuasar-%s", sandbox_id);
}

absl::Status CheckDomainPath(std::string_view path, std::string_view what) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrFormat("%s '%s' is not absolute", what, path));
  }
  if (path.size() > 1024) {
    return absl::InvalidArgumentError(absl::StrFormat("%s is longer than 1024 bytes", what));
  }
  RETURN_IF_ERROR(CheckPrintable(path, what));
  for (char c : path) {
    if (static_cast<unsigned char>(c) > 0x7e || c == ',') {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s '%s': only printable ASCII without ','", what, path));
    }
  }
  if (absl::StrContains(std::string(path) + "/", "/../")) {
    return absl::InvalidArgumentError(absl::StrFormat("%s '%s' contains '..'", what, path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> LibvirtGuestCmdline(const LibvirtConfig& config, const VmConfig& vm) {
  GuestBootOptions boot;
  boot.console = "ttyS0";
  boot.debug = config.debug || vm.debug;
  if (vm.shared_dir) boot.share_fs = "virtiofs";
  KernelCmdline cmdline = KernelCmdline::ForGuest(boot);
  RETURN_IF_ERROR(cmdline.Merge(config.kernel_params));
  RETURN_IF_ERROR(cmdline.Merge(vm.kernel_params));
  return cmdline.Build();
}

absl::StatusOr<std::string> BuildDomainXml(const LibvirtConfig& config, const VmConfig& vm,
                                           const LibvirtPaths& paths, Accel accel,
                                           std::string_view uuid) {
  if (accel == Accel::kAuto) return absl::InvalidArgumentError("accel must be resolved");
  ASSIGN_OR_RETURN(std::string name, DomainName(vm.sandbox_id));
  if (uuid.size() != 36) return absl::InvalidArgumentError("the domain UUID must have 36 chars");
  RETURN_IF_ERROR(CheckPrintable(uuid, "the domain UUID"));
  if (vm.vcpus < 1 || vm.memory_mib < 64) {
    return absl::InvalidArgumentError(
        absl::StrFormat("VM %s: needs at least 1 vCPU and 64 MiB (got %d, %d MiB)", vm.sandbox_id,
                        vm.vcpus, vm.memory_mib));
  }
  RETURN_IF_ERROR(CheckDomainPath(config.qemu_path, "qemu_path"));
  RETURN_IF_ERROR(CheckDomainPath(vm.kernel_path, "kernel_path"));
  RETURN_IF_ERROR(CheckDomainPath(vm.initrd_path, "initrd_path"));
  RETURN_IF_ERROR(CheckDomainPath(paths.agent_socket, "agent socket"));
  RETURN_IF_ERROR(CheckDomainPath(paths.console_log, "console log"));
  RETURN_IF_ERROR(CheckPrintable(config.cpu_model, "cpu_model"));
  ASSIGN_OR_RETURN(std::string cmdline, LibvirtGuestCmdline(config, vm));
  bool virtiofs = vm.shared_dir.has_value();
  InitLibxml();

  XmlOut x;
  x.Start("domain").Attr("type", accel == Accel::kKvm ? "kvm" : "qemu");
  x.Element("name", name);
  x.Element("uuid", std::string(uuid));
  x.Start("memory").Attr("unit", "MiB").Text(absl::StrFormat("%d", vm.memory_mib)).End();
  x.Element("vcpu", absl::StrFormat("%d", vm.vcpus));
  if (virtiofs) {
    // vhost-user (virtiofsd) needs guest RAM it can map: shared memfd, as the qemu driver.
    x.Start("memoryBacking");
    x.Empty("source", "type", "memfd");
    x.Empty("access", "mode", "shared");
    x.End();
  }
  x.Start("os");
  x.Start("type").Attr("arch", "x86_64").Attr("machine", config.machine_type).Text("hvm").End();
  x.Element("kernel", vm.kernel_path);
  x.Element("initrd", vm.initrd_path);
  x.Element("cmdline", cmdline);
  x.End();
  x.Start("features").Start("acpi").End().End();  // the power button Stop presses
  if (accel == Accel::kKvm && config.cpu_model.empty()) {
    x.Start("cpu").Attr("mode", "host-passthrough").End();
  } else if (!config.cpu_model.empty()) {
    x.Start("cpu").Attr("mode", "custom").Attr("match", "exact");
    x.Element("model", config.cpu_model);
    x.End();
  }
  x.Empty("clock", "offset", "utc");
  // The qemu driver's -no-reboot: any end of the guest ends the domain.
  x.Element("on_poweroff", "destroy");
  x.Element("on_reboot", "destroy");
  x.Element("on_crash", "destroy");
  x.Start("devices");
  x.Element("emulator", config.qemu_path);
  x.Start("serial").Attr("type", "file");
  x.Empty("source", "path", paths.console_log);
  x.Empty("target", "port", "0");
  x.End();
  x.Start("channel").Attr("type", "unix");
  x.Start("source").Attr("mode", "bind").Attr("path", paths.agent_socket).End();
  x.Start("target").Attr("type", "virtio").Attr("name", std::string(kAgentPortName)).End();
  x.End();
  if (vm.shared_dir) RETURN_IF_ERROR(WriteShare(config, *vm.shared_dir, x));
  for (const NetDevice& net : vm.nets) RETURN_IF_ERROR(WriteNet(net, x));
  for (size_t i = 0; i < vm.disks.size(); ++i) RETURN_IF_ERROR(WriteDisk(vm.disks[i], i, x));
  x.Empty("memballoon", "model", "none");
  x.End();  // devices
  if (config.run_as_root) {
    x.Start("seclabel").Attr("type", "static").Attr("model", "dac").Attr("relabel", "no");
    x.Element("label", "+0:+0");
    x.End();
  }
  x.End();  // domain
  return x.Finish();
}

absl::StatusOr<std::optional<std::string>> VirtioChannelState(std::string_view domain_xml,
                                                              std::string_view port_name) {
  InitLibxml();
  std::unique_ptr<xmlDoc, DocDeleter> doc(
      xmlReadMemory(domain_xml.data(), static_cast<int>(domain_xml.size()), "domain.xml", nullptr,
                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
  const xmlNode* root = doc ? xmlDocGetRootElement(doc.get()) : nullptr;
  if (root == nullptr || !xmlStrEqual(root->name, X("domain"))) {
    return absl::DataLossError("libvirt returned a domain XML that does not parse");
  }
  const xmlNode* devices = Child(root, "devices");
  for (const xmlNode* n = devices ? devices->children : nullptr; n; n = n->next) {
    if (n->type != XML_ELEMENT_NODE || !xmlStrEqual(n->name, X("channel"))) continue;
    const xmlNode* target = Child(n, "target");
    if (target && Prop(target, "type") == "virtio" && Prop(target, "name") == port_name) {
      return Prop(target, "state");
    }
  }
  return absl::NotFoundError(
      absl::StrFormat("the domain has no virtio channel named %s", port_name));
}

}  // namespace kuasar::vmm
