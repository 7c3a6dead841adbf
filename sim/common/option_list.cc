#include "sim/common/option_list.h"

#include <cctype>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace kuasar::sim {

bool OptionList::Has(std::string_view key) const { return Get(key).has_value(); }

std::optional<std::string> OptionList::Get(std::string_view key) const {
  std::optional<std::string> v;
  for (const auto& [k, val] : items) {
    if (k == key) v = val;  // the last one wins, as QEMU's QemuOpts
  }
  return v;
}

std::vector<std::string> OptionList::Unknown(std::initializer_list<std::string_view> known) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : items) {
    bool ok = false;
    for (std::string_view n : known) ok = ok || k == n;
    if (!ok) out.push_back(k);
  }
  return out;
}

namespace {

void AddItem(OptionList* list, const std::string& item, bool* first, bool implied_first) {
  size_t eq = item.find('=');
  if (*first && implied_first && eq == std::string::npos) {
    list->implied = item;
  } else if (eq == std::string::npos) {
    list->items.emplace_back(item, "");
  } else {
    list->items.emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
  *first = false;
}

}  // namespace

OptionList ParseQemuOptions(std::string_view text, bool implied_first) {
  OptionList list;
  std::string cur;
  bool first = true;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == ',') {
      if (i + 1 < text.size() && text[i + 1] == ',') {
        cur.push_back(',');
        ++i;
        continue;
      }
      AddItem(&list, cur, &first, implied_first);
      cur.clear();
      continue;
    }
    cur.push_back(c);
  }
  if (!cur.empty() || !first) AddItem(&list, cur, &first, implied_first);
  return list;
}

OptionList ParseClhOptions(std::string_view text) {
  OptionList list;
  std::string cur;
  int brackets = 0;
  bool quoted = false, first = true;
  for (char c : text) {
    if (c == '"') quoted = !quoted;
    if (!quoted && c == '[') ++brackets;
    if (!quoted && c == ']' && brackets > 0) --brackets;
    if (c == ',' && brackets == 0 && !quoted) {
      AddItem(&list, cur, &first, false);
      cur.clear();
      continue;
    }
    cur.push_back(c);
  }
  if (!cur.empty()) AddItem(&list, cur, &first, false);
  return list;
}

absl::StatusOr<uint64_t> ParseSize(std::string_view text, uint64_t default_unit) {
  std::string t(text);
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.erase(0, 1);
  if (t.empty()) return absl::InvalidArgumentError("empty size");
  uint64_t unit = default_unit;
  char last = static_cast<char>(std::toupper(static_cast<unsigned char>(t.back())));
  if (last == 'B') {
    t.pop_back();
    unit = 1;
    if (!t.empty()) last = static_cast<char>(std::toupper(static_cast<unsigned char>(t.back())));
  }
  if (!t.empty() && std::isalpha(static_cast<unsigned char>(t.back()))) {
    switch (last) {
      case 'K':
        unit = 1ull << 10;
        break;
      case 'M':
        unit = 1ull << 20;
        break;
      case 'G':
        unit = 1ull << 30;
        break;
      case 'T':
        unit = 1ull << 40;
        break;
      default:
        return absl::InvalidArgumentError(absl::StrFormat("invalid size suffix in \"%s\"", text));
    }
    t.pop_back();
  }
  uint64_t n = 0;
  if (!absl::SimpleAtoi(t, &n) || (n != 0 && unit > UINT64_MAX / n)) {
    return absl::InvalidArgumentError(absl::StrFormat("invalid size \"%s\"", text));
  }
  return n * unit;
}

std::optional<bool> ParseToggle(std::string_view text) {
  if (text.empty() || text == "on" || text == "yes" || text == "true") return true;
  if (text == "off" || text == "no" || text == "false") return false;
  return std::nullopt;
}

}  // namespace kuasar::sim
