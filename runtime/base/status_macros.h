// Status helpers Debian's Abseil (20220623) lacks: RETURN_IF_ERROR, ASSIGN_OR_RETURN,
// and an errno-carrying status. Header-only; usable from any thread.
#pragma once

#include <cerrno>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kuasar {

// Maps an errno to the closest canonical code and says which call failed on what:
// ErrnoStatus(ENOENT, "open", "/run/x") -> NOT_FOUND "open /run/x: No such file or directory".
absl::Status ErrnoStatus(int err, std::string_view call, std::string_view what = {});

// Prefixes a status message with context, keeping its code.
absl::Status Annotate(const absl::Status& status, std::string_view context);

}  // namespace kuasar

#define KUASAR_CONCAT_INNER_(a, b) a##b
#define KUASAR_CONCAT_(a, b) KUASAR_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                                   \
  do {                                                          \
    if (::absl::Status _kuasar_st = (expr); !_kuasar_st.ok()) { \
      return _kuasar_st;                                        \
    }                                                           \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(*tmp)

// ASSIGN_OR_RETURN(auto fd, OpenFile(path));
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(KUASAR_CONCAT_(_kuasar_so_, __LINE__), lhs, expr)
