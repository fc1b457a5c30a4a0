// Small early-return helpers for absl::Status / absl::StatusOr (Abseil 20220623 has none).
#ifndef TTSBENCH_COMMON_STATUS_MACROS_H_
#define TTSBENCH_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TTSBENCH_CONCAT_INNER_(a, b) a##b
#define TTSBENCH_CONCAT_(a, b) TTSBENCH_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)            \
  do {                                   \
    ::absl::Status _status_ = (expr);    \
    if (!_status_.ok()) return _status_; \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(*tmp)

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(TTSBENCH_CONCAT_(_statusor_, __LINE__), lhs, expr)

#endif  // TTSBENCH_COMMON_STATUS_MACROS_H_
