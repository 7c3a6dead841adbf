#include "runtime/guest/guest_network.h"

#include <arpa/inet.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace kuasar::guest {
namespace {

constexpr size_t kMaxInterfaces = 16;
constexpr size_t kMaxAddresses = 64;
constexpr size_t kMaxRoutes = 256;

absl::Status ValidateMac(std::string_view mac) {
  bool ok = mac.size() == 17;
  for (size_t i = 0; ok && i < mac.size(); ++i) {
    ok = (i % 3 == 2) ? mac[i] == ':' : absl::ascii_isxdigit(static_cast<unsigned char>(mac[i]));
  }
  if (!ok) return absl::InvalidArgumentError(absl::StrFormat("bad MAC address \"%s\"", mac));
  return absl::OkStatus();
}

bool IsV6(std::string_view s) { return s.find(':') != std::string_view::npos; }

// "default", "10.0.0.0/8", "fd00::/64" or a bare address.
absl::Status ValidateDestination(std::string_view dest) {
  std::vector<std::string> parts = absl::StrSplit(std::string(dest), '/');
  if (parts.size() > 2) {
    return absl::InvalidArgumentError(absl::StrFormat("bad route \"%s\"", dest));
  }
  bool v6 = IsV6(parts[0]);
  if (absl::Status st = ValidateAddress(parts[0], v6); !st.ok()) return st;
  if (parts.size() == 2) {
    uint32_t prefix = 0;
    if (!absl::SimpleAtoi(parts[1], &prefix) || prefix > (v6 ? 128u : 32u)) {
      return absl::InvalidArgumentError(absl::StrFormat("bad route prefix \"%s\"", dest));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateLinkName(std::string_view name) {
  bool ok = !name.empty() && name.size() < 16 && name != "." && name != "..";
  for (char c : name) {
    ok = ok &&
         (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
  }
  if (!ok) return absl::InvalidArgumentError(absl::StrFormat("bad interface name \"%s\"", name));
  return absl::OkStatus();
}

absl::Status ValidateAddress(std::string_view address, bool ipv6) {
  unsigned char buf[16];
  std::string a(address);
  if (a.empty() || ::inet_pton(ipv6 ? AF_INET6 : AF_INET, a.c_str(), buf) != 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bad IPv%d address \"%s\"", ipv6 ? 6 : 4, address));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<IpArgs>> PlanNetwork(const agent::v1::SetupSandboxRequest& req,
                                                const std::vector<NetLink>& links) {
  if (req.interfaces_size() > static_cast<int>(kMaxInterfaces) ||
      req.routes_size() > static_cast<int>(kMaxRoutes)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("at most %d interfaces and %d routes", kMaxInterfaces, kMaxRoutes));
  }
  std::vector<IpArgs> plan;
  for (const auto& iface : req.interfaces()) {
    if (absl::Status st = ValidateLinkName(iface.name()); !st.ok()) return st;
    if (absl::Status st = ValidateMac(iface.mac()); !st.ok()) return st;
    if (iface.mtu() != 0 && (iface.mtu() < 68 || iface.mtu() > 65535)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("bad MTU %d for %s", iface.mtu(), iface.name()));
    }
    if (iface.addresses_size() > static_cast<int>(kMaxAddresses)) {
      return absl::InvalidArgumentError(absl::StrFormat("too many addresses on %s", iface.name()));
    }
    std::string mac = absl::AsciiStrToLower(iface.mac());
    const NetLink* link = nullptr;
    for (const auto& l : links) {
      if (l.mac == mac) link = &l;
    }
    if (link == nullptr) {
      return absl::NotFoundError(
          absl::StrFormat("no network interface has MAC %s (wanted as %s)", mac, iface.name()));
    }
    const std::string& name = iface.name();
    if (link->name != name) {
      for (const auto& l : links) {
        if (l.name == name) {
          return absl::FailedPreconditionError(
              absl::StrFormat("cannot rename %s to %s: %s already exists", link->name, name, name));
        }
      }
      plan.push_back({"link", "set", "dev", link->name, "down"});
      plan.push_back({"link", "set", "dev", link->name, "name", name});
    }
    if (iface.mtu() != 0)
      plan.push_back({"link", "set", "dev", name, "mtu", std::to_string(iface.mtu())});
    for (const auto& a : iface.addresses()) {
      if (absl::Status st = ValidateAddress(a.address(), a.ipv6()); !st.ok()) return st;
      if (a.prefix_length() > (a.ipv6() ? 128u : 32u)) {
        return absl::InvalidArgumentError(
            absl::StrFormat("bad prefix length %d for %s", a.prefix_length(), a.address()));
      }
      IpArgs cmd;
      if (a.ipv6()) cmd = {"-f", "inet6"};
      cmd.insert(
          cmd.end(),
          {"addr", "add", absl::StrFormat("%s/%d", a.address(), a.prefix_length()), "dev", name});
      plan.push_back(std::move(cmd));
    }
    plan.push_back({"link", "set", "dev", name, "up"});
  }
  for (const auto& r : req.routes()) {
    std::string dest = r.destination().empty() ? "default" : r.destination();
    if (dest != "default") {
      if (absl::Status st = ValidateDestination(dest); !st.ok()) return st;
    }
    if (r.gateway().empty() && r.device().empty()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("route %s needs a gateway or a device", dest));
    }
    bool v6 = dest != "default" ? IsV6(dest) : IsV6(r.gateway());
    if (!r.gateway().empty()) {
      if (absl::Status st = ValidateAddress(r.gateway(), v6); !st.ok()) return st;
    }
    if (!r.device().empty()) {
      if (absl::Status st = ValidateLinkName(r.device()); !st.ok()) return st;
    }
    IpArgs cmd;
    if (v6) cmd = {"-f", "inet6"};
    cmd.insert(cmd.end(), {"route", "replace", dest});
    if (!r.gateway().empty()) cmd.insert(cmd.end(), {"via", r.gateway()});
    if (!r.device().empty()) cmd.insert(cmd.end(), {"dev", r.device()});
    plan.push_back(std::move(cmd));
  }
  return plan;
}

bool IsIdempotentAdd(const IpArgs& args) {
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "addr" && args[i + 1] == "add") return true;
  }
  return false;
}

}  // namespace kuasar::guest
