// TomlSection reads one table of a TOML config with errors that name the file and the
// full key ("kuasar.toml: sandboxer.socket_mode: expected an octal string like \"0660\"").
// Every key read is remembered, so CheckNoUnknownKeys() can reject typos.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "absl/status/status.h"

namespace kuasar {

class TomlSection {
 public:
  // `table` may be null (section absent): every Get leaves its default.
  TomlSection(const toml::table* table, std::string path, std::string source);

  // Each Get leaves *out untouched when the key is absent.
  absl::Status Get(std::string_view key, std::string* out);
  absl::Status Get(std::string_view key, bool* out);
  absl::Status Get(std::string_view key, int64_t* out, int64_t min, int64_t max);
  absl::Status Get(std::string_view key, double* out, double min, double max);
  absl::Status Get(std::string_view key, std::vector<std::string>* out);
  absl::Status Get(std::string_view key, std::vector<int64_t>* out, int64_t min, int64_t max);
  // A file mode written as an octal string ("0660").
  absl::Status GetMode(std::string_view key, uint32_t* out);

  // A sub-table; absent gives an empty section, a non-table value an error.
  absl::Status Sub(std::string_view key, TomlSection* out);

  absl::Status CheckNoUnknownKeys() const;
  // An INVALID_ARGUMENT naming source and full key, for checks beyond types.
  absl::Status Error(std::string_view key, std::string_view what) const;
  bool present() const { return table_ != nullptr; }
  const std::string& path() const { return path_; }
  const std::string& source() const { return source_; }

 private:
  const toml::node* Find(std::string_view key);

  const toml::table* table_;
  std::string path_;
  std::string source_;
  std::set<std::string, std::less<>> seen_;
};

}  // namespace kuasar
