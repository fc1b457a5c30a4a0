// Constants both ends of the agent <-> coordinator stream must agree on.
#ifndef TTSBENCH_COMMON_WIRE_H_
#define TTSBENCH_COMMON_WIRE_H_

namespace ttsbench::common {

// gRPC metadata key carrying the shared agent token (lower case, as gRPC requires).
inline constexpr char kTokenMetadata[] = "x-ttsbench-token";

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_WIRE_H_
