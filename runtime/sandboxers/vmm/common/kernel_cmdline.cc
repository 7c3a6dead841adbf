#include "runtime/sandboxers/vmm/common/kernel_cmdline.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_format.h"

namespace kuasar::vmm {
namespace {

constexpr size_t kMaxCmdline = 2047;

bool Printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

std::string Quote(std::string_view value) {
  if (value.find(' ') == std::string_view::npos) return std::string(value);
  return absl::StrFormat("\"%s\"", value);
}

// Splits on spaces outside double quotes; quotes are kept out of the tokens.
absl::StatusOr<std::vector<std::string>> Tokenize(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false, have = false;
  for (char c : s) {
    if (c == '"') {
      quoted = !quoted;
      have = true;
    } else if ((c == ' ' || c == '\t' || c == '\n') && !quoted) {
      if (have) out.push_back(std::move(cur));
      cur.clear();
      have = false;
    } else {
      cur.push_back(c);
      have = true;
    }
  }
  if (quoted) return absl::InvalidArgumentError(absl::StrFormat("unbalanced quote in %s", s));
  if (have) out.push_back(std::move(cur));
  return out;
}

}  // namespace

KernelCmdline KernelCmdline::ForGuest(const GuestBootOptions& options) {
  KernelCmdline c;
  c.Set("console", options.console);
  c.Set("panic", "-1");
  c.Set("reboot", "k");
  if (!options.debug) c.Flag("quiet");
  // A VM has no PS/2 mouse or PNP i8042 and a stable clock: skip those probes and the
  // clocksource watchdog; crypto self-tests and an extra serial port cost boot time too.
  c.Flag("i8042.noaux").Flag("i8042.nomux").Flag("i8042.nopnp").Flag("i8042.dumbkbd");
  c.Set("tsc", "reliable");
  c.Flag("cryptomgr.notests");
  c.Set("8250.nr_uarts", "1");
  c.Set("rcupdate.rcu_expedited", "1");
  c.Set("net.ifnames", "0");
  c.Set("task.log_level", options.debug ? "debug" : "info");
  if (!options.share_fs.empty()) c.Set("task.sharefs_type", options.share_fs);
  return c;
}

KernelCmdline& KernelCmdline::Set(std::string_view key, std::string_view value) {
  auto first =
      std::find_if(params_.begin(), params_.end(), [&](const Param& p) { return p.key == key; });
  if (first == params_.end()) {
    params_.push_back({std::string(key), std::string(value)});
    return *this;
  }
  first->value = std::string(value);
  params_.erase(
      std::remove_if(first + 1, params_.end(), [&](const Param& p) { return p.key == key; }),
      params_.end());
  return *this;
}

KernelCmdline& KernelCmdline::Flag(std::string_view flag) {
  if (!Has(flag)) params_.push_back({std::string(flag), std::nullopt});
  return *this;
}

KernelCmdline& KernelCmdline::Remove(std::string_view key) {
  params_.erase(
      std::remove_if(params_.begin(), params_.end(), [&](const Param& p) { return p.key == key; }),
      params_.end());
  return *this;
}

KernelCmdline& KernelCmdline::AddInitArg(std::string_view arg) {
  init_args_.emplace_back(arg);
  return *this;
}

absl::Status KernelCmdline::Merge(std::string_view params) {
  auto tokens = Tokenize(params);
  if (!tokens.ok()) return tokens.status();
  std::vector<Param> added;
  std::vector<std::string> init_args;
  bool init = false;
  for (std::string& t : *tokens) {
    if (init) {
      init_args.push_back(std::move(t));
    } else if (t == "--") {
      init = true;
    } else if (size_t eq = t.find('='); eq != std::string::npos) {
      added.push_back({t.substr(0, eq), t.substr(eq + 1)});
    } else {
      added.push_back({std::move(t), std::nullopt});
    }
  }
  std::set<std::string> named;
  for (const Param& p : added) named.insert(p.key);
  params_.erase(std::remove_if(params_.begin(), params_.end(),
                               [&](const Param& p) { return named.count(p.key) > 0; }),
                params_.end());
  for (Param& p : added) {
    if (!p.value && Has(p.key)) continue;
    params_.push_back(std::move(p));
  }
  for (std::string& a : init_args) init_args_.push_back(std::move(a));
  return absl::OkStatus();
}

std::optional<std::string> KernelCmdline::Get(std::string_view key) const {
  for (const Param& p : params_) {
    if (p.key == key) return p.value.value_or("");
  }
  return std::nullopt;
}

bool KernelCmdline::Has(std::string_view key) const { return Get(key).has_value(); }

absl::StatusOr<std::string> KernelCmdline::Build() const {
  std::string out;
  auto append = [&](std::string_view s) {
    if (!out.empty()) out.push_back(' ');
    out.append(s);
  };
  for (const Param& p : params_) {
    if (p.key.empty() || !Printable(p.key) || p.key.find_first_of(" =\"") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrFormat("bad kernel parameter name '%s'", p.key));
    }
    if (!p.value) {
      append(p.key);
      continue;
    }
    if (!Printable(*p.value) || p.value->find('"') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrFormat("bad value for kernel parameter %s: '%s'", p.key, *p.value));
    }
    append(absl::StrFormat("%s=%s", p.key, Quote(*p.value)));
  }
  if (!init_args_.empty()) {
    append("--");
    for (const std::string& a : init_args_) {
      if (a.empty() || !Printable(a) || a.find_first_of(" \"") != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrFormat("bad init argument '%s'", a));
      }
      append(a);
    }
  }
  if (out.size() > kMaxCmdline) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "kernel command line is %d bytes; the limit is %d", out.size(), kMaxCmdline));
  }
  return out;
}

}  // namespace kuasar::vmm
