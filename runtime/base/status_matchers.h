// GoogleTest matchers for absl::Status / StatusOr (Debian's Abseil ships none).
// EXPECT_THAT(s, IsOk()); EXPECT_THAT(s, StatusIs(absl::StatusCode::kNotFound, HasSubstr("x")));
#pragma once

#include <gmock/gmock.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kuasar::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& st = GetStatus(arg);
  *result_listener << "status: " << st;
  return st.ok();
}

MATCHER_P(StatusIs, code, "has code " + ::testing::PrintToString(code)) {
  const absl::Status& st = GetStatus(arg);
  *result_listener << "status: " << st;
  return st.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher, "has code and message") {
  const absl::Status& st = GetStatus(arg);
  *result_listener << "status: " << st;
  return st.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(st.message()),
                                       result_listener);
}

}  // namespace kuasar::testing

#define ASSERT_OK(expr) ASSERT_THAT(expr, ::kuasar::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT(expr, ::kuasar::testing::IsOk())
