// A TCP connect to the target before any agent starts, so "unreachable" is one clear line.
#ifndef TTSBENCH_COORDINATOR_PREFLIGHT_H_
#define TTSBENCH_COORDINATOR_PREFLIGHT_H_

#include "absl/status/status.h"
#include "common/url.h"

namespace ttsbench::coordinator {

absl::Status CheckReachable(const common::Url& url, double timeout_s);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_PREFLIGHT_H_
