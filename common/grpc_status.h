// The one conversion pair between absl::Status and grpc::Status.
#ifndef TTSBENCH_COMMON_GRPC_STATUS_H_
#define TTSBENCH_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace ttsbench::common {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_GRPC_STATUS_H_
