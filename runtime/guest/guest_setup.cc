#include "runtime/guest/guest_setup.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "runtime/guest/guest_network.h"

namespace kuasar::guest {
namespace {

constexpr int kMaxListEntries = 64;
constexpr size_t kMaxHostsLines = 1024;
constexpr size_t kMaxLine = 1024;

bool HasControl(std::string_view s) {
  for (char c : s) {
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) return true;
  }
  return false;
}

// Search domains and resolver options: one token each, no spaces.
absl::Status ValidateToken(std::string_view what, std::string_view s) {
  bool ok = !s.empty() && s.size() <= 253;
  for (char c : s) {
    ok = ok && (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ||
                c == '_' || c == ':');
  }
  if (!ok) return absl::InvalidArgumentError(absl::StrFormat("bad %s \"%s\"", what, s));
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateHostname(std::string_view hostname) {
  bool ok = !hostname.empty() && hostname.size() <= 64 && hostname.front() != '.' &&
            hostname.back() != '.' && hostname.find("..") == std::string_view::npos;
  for (char c : hostname) {
    ok = ok && (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.');
  }
  if (!ok) return absl::InvalidArgumentError(absl::StrFormat("bad hostname \"%s\"", hostname));
  return absl::OkStatus();
}

absl::StatusOr<std::string> RenderHosts(const agent::v1::SetupSandboxRequest& req) {
  std::string out =
      "127.0.0.1\tlocalhost\n"
      "::1\tlocalhost ip6-localhost ip6-loopback\n"
      "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\n"
      "ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";
  if (!req.hostname().empty()) {
    for (const auto& iface : req.interfaces()) {
      for (const auto& a : iface.addresses()) {
        if (!ValidateAddress(a.address(), a.ipv6()).ok()) continue;
        out += absl::StrFormat("%s\t%s\n", a.address(), req.hostname());
      }
    }
  }
  if (req.hosts_size() > static_cast<int>(kMaxHostsLines)) {
    return absl::InvalidArgumentError(absl::StrFormat("more than %d hosts lines", kMaxHostsLines));
  }
  for (const auto& line : req.hosts()) {
    if (line.size() > kMaxLine || HasControl(line)) {
      return absl::InvalidArgumentError("a hosts line is too long or holds control characters");
    }
    out += line + "\n";
  }
  return out;
}

absl::StatusOr<std::string> RenderResolvConf(const agent::v1::SetupSandboxRequest& req) {
  if (req.dns_servers_size() > kMaxListEntries || req.dns_searches_size() > kMaxListEntries ||
      req.dns_options_size() > kMaxListEntries) {
    return absl::InvalidArgumentError(
        absl::StrFormat("at most %d DNS servers, searches and options", kMaxListEntries));
  }
  std::string out;
  for (const auto& s : req.dns_servers()) {
    absl::Status st = ValidateAddress(s, s.find(':') != std::string::npos);
    if (!st.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat("DNS server: %s", st.message()));
    }
    out += absl::StrFormat("nameserver %s\n", s);
  }
  for (const auto& s : req.dns_searches()) {
    if (absl::Status st = ValidateToken("DNS search domain", s); !st.ok()) return st;
  }
  for (const auto& s : req.dns_options()) {
    if (absl::Status st = ValidateToken("DNS option", s); !st.ok()) return st;
  }
  if (!req.dns_searches().empty()) out += "search " + absl::StrJoin(req.dns_searches(), " ") + "\n";
  if (!req.dns_options().empty()) out += "options " + absl::StrJoin(req.dns_options(), " ") + "\n";
  return out;
}

absl::StatusOr<std::string> SysctlPath(std::string_view key) {
  bool ok = !key.empty() && key.size() <= 256;
  for (char c : key) {
    ok = ok && (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
                c == '.' || c == '/');
  }
  if (!ok) return absl::InvalidArgumentError(absl::StrFormat("bad sysctl name \"%s\"", key));
  // With '/' as the separator dots are literal (net/ipv4/conf/eth0.100/forwarding).
  bool slashes = key.find('/') != std::string_view::npos;
  std::vector<std::string> parts = absl::StrSplit(std::string(key), slashes ? '/' : '.');
  for (const auto& p : parts) {
    if (p.empty() || p == "." || p == "..") {
      return absl::InvalidArgumentError(absl::StrFormat("bad sysctl name \"%s\"", key));
    }
  }
  std::string dotted = absl::StrJoin(parts, ".");
  bool namespaced = absl::StartsWith(dotted, "net.") || absl::StartsWith(dotted, "fs.mqueue.") ||
                    absl::StartsWith(dotted, "kernel.shm") ||
                    absl::StartsWith(dotted, "kernel.msg") || dotted == "kernel.sem";
  if (!namespaced) {
    return absl::PermissionDeniedError(
        absl::StrFormat("sysctl %s is not namespaced; a pod may not set it", key));
  }
  return "/proc/sys/" + absl::StrJoin(parts, "/");
}

absl::Status ValidateSysctlValue(std::string_view value) {
  if (value.size() > 4096 || HasControl(value)) {
    return absl::InvalidArgumentError("a sysctl value is too long or holds control characters");
  }
  return absl::OkStatus();
}

}  // namespace kuasar::guest
