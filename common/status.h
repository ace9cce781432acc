// absl::Status inside, grpc::Status at the RPC boundary: the one conversion.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace shrink {

// Converts an internal status to the status an RPC returns.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Converts an RPC status back, for clients.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace shrink

// Returns from the current function when `expr` is not OK.
#define SHRINK_RETURN_IF_ERROR(expr)            \
  do {                                          \
    ::absl::Status _shrink_status = (expr);     \
    if (!_shrink_status.ok()) return _shrink_status; \
  } while (0)

#define SHRINK_CONCAT_INNER(a, b) a##b
#define SHRINK_CONCAT(a, b) SHRINK_CONCAT_INNER(a, b)
#define SHRINK_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(*tmp)

// `lhs = *expr`, or returns expr's error.
#define SHRINK_ASSIGN_OR_RETURN(lhs, expr) \
  SHRINK_ASSIGN_OR_RETURN_IMPL(SHRINK_CONCAT(_shrink_or_, __LINE__), lhs, expr)
