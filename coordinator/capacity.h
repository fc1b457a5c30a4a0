// Capacity search: the highest load (concurrency or rate) meeting every SLO. Doubling finds a
// bracket [last pass, first fail]; bisection narrows it to the requested resolution.
#ifndef TTSBENCH_COORDINATOR_CAPACITY_H_
#define TTSBENCH_COORDINATOR_CAPACITY_H_

#include <functional>

#include "absl/status/statusor.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::coordinator {

// Runs one probe at `load`; true when every SLO held.
using CapacityProbe = std::function<absl::StatusOr<bool>(double load)>;

// `integer`: concurrency (probes are whole numbers, resolution at least 1).
absl::StatusOr<v1::CapacityResult> SearchCapacity(const v1::CapacitySearch& search, bool integer,
                                                  const CapacityProbe& probe);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_CAPACITY_H_
