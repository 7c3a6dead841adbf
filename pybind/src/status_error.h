// How an absl::Status leaves C++ for Python: bindings throw StatusError (with the GIL held
// or released); the translator installed by RegisterStatusErrors raises the class of
// kuasar.errors that matches the code (NotFound, AlreadyExists, ...), carrying the message
// and the canonical code. Thread-safe.
#pragma once

#include <exception>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kuasar::python {

class StatusError : public std::exception {
 public:
  explicit StatusError(absl::Status status)
      : status_(std::move(status)), what_(status_.ToString()) {}
  const absl::Status& status() const { return status_; }
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  absl::Status status_;
  std::string what_;
};

inline void ThrowIfError(const absl::Status& status) {
  if (!status.ok()) throw StatusError(status);
}

template <typename T>
T ValueOrThrow(absl::StatusOr<T> value) {
  if (!value.ok()) throw StatusError(value.status());
  return std::move(*value);
}

// Installs the translator; kuasar.errors is imported when the first error is raised.
void RegisterStatusErrors();

}  // namespace kuasar::python
