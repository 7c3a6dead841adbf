// OciSpec: the few parts of an OCI runtime-spec config.json (containerd writes it into the
// bundle) that the sandboxer reads or adds to. Parsing is strict about shape and gives
// errors that name the field; everything else in the document is kept as is.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace kuasar {

class OciSpec {
 public:
  static absl::StatusOr<OciSpec> Parse(std::string_view json);
  static absl::StatusOr<OciSpec> Load(const std::string& path);
  absl::Status Save(const std::string& path) const;

  std::string oci_version() const { return doc_.value("ociVersion", ""); }
  void set_oci_version(const std::string& v) { doc_["ociVersion"] = v; }
  bool terminal() const;
  // linux.cgroupsPath ("" when unset).
  std::string cgroups_path() const;
  std::string annotation(std::string_view key) const;
  bool HasMountAt(std::string_view destination) const;
  // Removes linux.namespaces entries that join an existing namespace by path; returns how
  // many were removed.
  int DropJoinedNamespaces();
  // True if linux.namespaces joins a `type` ("network", ...) namespace by path.
  bool JoinsNamespace(std::string_view type) const;
  // Removes the linux.sysctl entries whose key starts with `prefix`; returns them.
  std::map<std::string, std::string> TakeSysctls(std::string_view prefix);
  // Appends a bind mount (rbind, plus "ro" when read_only) unless one targets `destination`.
  void AddBindMount(const std::string& source, const std::string& destination, bool read_only);

  const nlohmann::json& doc() const { return doc_; }

 private:
  explicit OciSpec(nlohmann::json doc) : doc_(std::move(doc)) {}
  nlohmann::json doc_;
};

// Validates an OCI runtime-spec Process (Task.Exec's spec): args non-empty, cwd absolute.
absl::Status ValidateProcessJson(std::string_view json, bool* terminal);

}  // namespace kuasar
