#include "runtime/sandboxers/vmm/backend/pod_network.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "runtime/base/child_process.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/unique_fd.h"

namespace kuasar {
namespace {

// Runs iproute2's `args` in the namespace; returns stdout.
absl::StatusOr<std::string> InNetns(const std::string& netns, std::vector<std::string> args) {
  std::vector<std::string> argv = {"nsenter", "--net=" + netns, "--"};
  argv.insert(argv.end(), args.begin(), args.end());
  char out_tmpl[] = "/tmp/kuasar-net.XXXXXX";
  UniqueFd out(::mkostemp(out_tmpl, O_CLOEXEC));
  if (!out) return ErrnoStatus(errno, "mkostemp");
  ::unlink(out_tmpl);
  SpawnOptions so;
  so.stdout_fd = out.get();
  so.stderr_fd = out.get();
  ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(argv, so));
  ASSIGN_OR_RETURN(int status, child.WaitFor(std::chrono::seconds(10)));
  std::string text;
  ::lseek(out.get(), 0, SEEK_SET);
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out.get(), buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  if (status != 0) {
    return absl::InternalError(absl::StrFormat("%s %s: %s", args[0], args.size() > 1 ? args[1] : "",
                                               text));
  }
  return text;
}

}  // namespace

std::string TapNameFor(const std::string& sandbox_id) {
  return "tap" + sandbox_id.substr(0, 12);
}

absl::StatusOr<PodNetworkPlan> MirrorIntoTap(const std::string& netns, const std::string& tap) {
  PodNetworkPlan plan;
  plan.netns_path = netns;
  ASSIGN_OR_RETURN(std::string links, InNetns(netns, {"ip", "-j", "addr", "show"}));
  nlohmann::json j = nlohmann::json::parse(links, nullptr, false);
  if (!j.is_array()) return absl::InternalError("ip -j addr: unparsable output");
  for (const auto& link : j) {
    std::string name = link.value("ifname", "");
    if (name.empty() || name == "lo" || name == tap || link.value("link_type", "") == "loopback") {
      continue;
    }
    plan.host_interface = name;
    plan.mac = link.value("address", "");
    plan.mtu = link.value("mtu", 1500u);
    for (const auto& a : link.value("addr_info", nlohmann::json::array())) {
      std::string family = a.value("family", "");
      if (family != "inet" && family != "inet6") continue;
      if (a.value("scope", "") == "link") continue;
      agent::v1::IPAddress ip;
      ip.set_address(a.value("local", ""));
      ip.set_prefix_length(a.value("prefixlen", 0u));
      ip.set_ipv6(family == "inet6");
      plan.addresses.push_back(ip);
    }
    break;
  }
  if (plan.host_interface.empty()) {
    return absl::NotFoundError(absl::StrFormat("no network interface in %s to mirror", netns));
  }
  ASSIGN_OR_RETURN(std::string routes, InNetns(netns, {"ip", "-j", "route", "show"}));
  nlohmann::json r = nlohmann::json::parse(routes, nullptr, false);
  if (r.is_array()) {
    for (const auto& e : r) {
      if (e.value("dev", "") != plan.host_interface) continue;
      agent::v1::Route route;
      std::string dst = e.value("dst", "");
      route.set_destination(dst == "default" ? "" : dst);
      route.set_gateway(e.value("gateway", ""));
      route.set_device(plan.host_interface);
      plan.routes.push_back(route);
    }
  }
  plan.tap = tap;
  const std::string& dev = plan.host_interface;
  std::vector<std::vector<std::string>> steps = {
      {"ip", "tuntap", "add", tap, "mode", "tap"},
      {"ip", "link", "set", tap, "mtu", std::to_string(plan.mtu), "up"},
      {"tc", "qdisc", "add", "dev", dev, "ingress"},
      {"tc", "filter", "add", "dev", dev, "parent", "ffff:", "protocol", "all", "u32", "match",
       "u8", "0", "0", "action", "mirred", "egress", "redirect", "dev", tap},
      {"tc", "qdisc", "add", "dev", tap, "ingress"},
      {"tc", "filter", "add", "dev", tap, "parent", "ffff:", "protocol", "all", "u32", "match",
       "u8", "0", "0", "action", "mirred", "egress", "redirect", "dev", dev},
  };
  for (const auto& step : steps) {
    if (auto st = InNetns(netns, step); !st.ok()) {
      RemoveMirror(netns, tap, dev);
      return st.status();
    }
  }
  return plan;
}

void RemoveMirror(const std::string& netns, const std::string& tap, const std::string& dev) {
  if (netns.empty()) return;
  if (!dev.empty()) (void)InNetns(netns, {"tc", "qdisc", "del", "dev", dev, "ingress"});
  (void)InNetns(netns, {"ip", "link", "del", tap});
}

}  // namespace kuasar
