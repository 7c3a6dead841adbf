#include "runtime/core/toml_section.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace kuasar {

TomlSection::TomlSection(const toml::table* table, std::string path, std::string source)
    : table_(table), path_(std::move(path)), source_(std::move(source)) {}

absl::Status TomlSection::Error(std::string_view key, std::string_view what) const {
  std::string full = path_.empty() ? std::string(key) : absl::StrFormat("%s.%s", path_, key);
  return absl::InvalidArgumentError(absl::StrFormat("%s: %s: %s", source_, full, what));
}

const toml::node* TomlSection::Find(std::string_view key) {
  seen_.emplace(key);
  if (table_ == nullptr) return nullptr;
  return table_->get(key);
}

absl::Status TomlSection::Get(std::string_view key, std::string* out) {
  const toml::node* n = Find(key);
  if (n == nullptr) return absl::OkStatus();
  auto v = n->value<std::string>();
  if (!v || !n->is_string()) return Error(key, "expected a string");
  *out = *v;
  return absl::OkStatus();
}

absl::Status TomlSection::Get(std::string_view key, bool* out) {
  const toml::node* n = Find(key);
  if (n == nullptr) return absl::OkStatus();
  if (!n->is_boolean()) return Error(key, "expected true or false");
  *out = *n->value<bool>();
  return absl::OkStatus();
}

absl::Status TomlSection::Get(std::string_view key, int64_t* out, int64_t min, int64_t max) {
  const toml::node* n = Find(key);
  if (n == nullptr) return absl::OkStatus();
  if (!n->is_integer()) return Error(key, "expected an integer");
  int64_t v = *n->value<int64_t>();
  if (v < min || v > max) {
    return Error(key, absl::StrCat(v, " is out of range [", min, ", ", max, "]"));
  }
  *out = v;
  return absl::OkStatus();
}

absl::Status TomlSection::Get(std::string_view key, double* out, double min, double max) {
  const toml::node* n = Find(key);
  if (n == nullptr) return absl::OkStatus();
  if (!n->is_number()) return Error(key, "expected a number");
  double v = *n->value<double>();
  if (!std::isfinite(v) || v < min || v > max) {
    return Error(key, absl::StrCat(v, " is out of range [", min, ", ", max, "]"));
  }
  *out = v;
  return absl::OkStatus();
}

absl::Status TomlSection::Get(std::string_view key, std::vector<std::string>* out) {
  const toml::node* n = Find(key);
  if (n == nullptr) return absl::OkStatus();
  const toml::array* arr = n->as_array();
  if (arr == nullptr) return Error(key, "expected an array of strings");
  std::vector<std::string> v;
  for (const toml::node& e : *arr) {
    if (!e.is_string()) return Error(key, "expected an array of strings");
    v.push_back(*e.value<std::string>());
  }
  *out = std::move(v);
  return absl::OkStatus();
}

absl::Status TomlSection::Get(std::string_view key, std::vector<int64_t>* out, int64_t min,
                              int64_t max) {
  const toml::node* n = Find(key);
  if (n == nullptr) return absl::OkStatus();
  const toml::array* arr = n->as_array();
  if (arr == nullptr) return Error(key, "expected an array of integers");
  std::vector<int64_t> v;
  for (const toml::node& e : *arr) {
    if (!e.is_integer()) return Error(key, "expected an array of integers");
    int64_t x = *e.value<int64_t>();
    if (x < min || x > max) {
      return Error(key, absl::StrFormat("%d is out of range [%d, %d]", x, min, max));
    }
    v.push_back(x);
  }
  *out = std::move(v);
  return absl::OkStatus();
}

absl::Status TomlSection::GetMode(std::string_view key, uint32_t* out) {
  std::string s;
  const toml::node* n = Find(key);
  if (n == nullptr) return absl::OkStatus();
  if (!n->is_string()) return Error(key, "expected an octal string like \"0660\"");
  s = *n->value<std::string>();
  if (s.empty() || s.size() > 4) return Error(key, "expected an octal string like \"0660\"");
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '7') return Error(key, "expected an octal string like \"0660\"");
    v = v * 8 + static_cast<uint32_t>(c - '0');
  }
  *out = v;
  return absl::OkStatus();
}

absl::Status TomlSection::Sub(std::string_view key, TomlSection* out) {
  const toml::node* n = Find(key);
  std::string sub_path = path_.empty() ? std::string(key) : absl::StrFormat("%s.%s", path_, key);
  if (n != nullptr && !n->is_table()) return Error(key, "expected a table");
  *out = TomlSection(n ? n->as_table() : nullptr, sub_path, source_);
  return absl::OkStatus();
}

absl::Status TomlSection::CheckNoUnknownKeys() const {
  if (table_ == nullptr) return absl::OkStatus();
  std::vector<std::string> unknown;
  for (const auto& [k, v] : *table_) {
    if (!seen_.contains(k.str())) unknown.emplace_back(k.str());
  }
  if (unknown.empty()) return absl::OkStatus();
  return Error(absl::StrJoin(unknown, ", "),
               unknown.size() == 1 ? "unknown key" : "unknown keys");
}

}  // namespace kuasar
