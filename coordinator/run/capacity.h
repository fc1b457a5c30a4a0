// Capacity search: the highest load (concurrency or rate) meeting every SLO. Doubling finds a
// bracket [last pass, first fail]; bisection narrows it to the requested resolution. Each probe
// is sized by the statistic it is judged on, and reports that statistic's confidence interval.
#ifndef TTSBENCH_COORDINATOR_CAPACITY_H_
#define TTSBENCH_COORDINATOR_CAPACITY_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/record_store.h"
#include "common/slo.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::coordinator {

// Confidence of the intervals reported for each probe's SLO percentiles.
inline constexpr double kProbeConfidence = 0.95;

// Runs one probe at `load`; `passed` says whether every SLO held.
using CapacityProbe = std::function<absl::StatusOr<v1::CapacityProbeResult>(double load)>;

// `integer`: concurrency (probes are whole numbers, resolution at least 1).
absl::StatusOr<v1::CapacityResult> SearchCapacity(const v1::CapacitySearch& search, bool integer,
                                                  const CapacityProbe& probe);

// Measured requests a probe at `load` needs before its verdict means anything: enough that ~10
// lie beyond each SLO percentile (p99 -> 1000, p95 -> 200; a success_rate=99% likewise 1000),
// in closed loop 5 per user so every user passes through the server's queue several times, and
// never fewer than `search.min_requests` or `plan_iterations`.
int64_t ProbeRequests(const v1::CapacitySearch& search, const std::vector<common::Slo>& slos,
                      double load, bool integer, int64_t plan_iterations);

// A probe's verdict from its level statistics (SLOs evaluated) and its records: passed when some
// request succeeded and every SLO held; percentile SLOs get an order-statistic interval.
v1::CapacityProbeResult JudgeProbe(double load, int64_t planned_requests,
                                   const v1::LevelStats& stats, const common::RecordStore& records,
                                   const std::vector<common::Slo>& slos);

// The console lines: the capacity, each SLO's estimate and interval at the capacity and at the
// first failing probe, the probes, and per-replica figures.
std::string CapacitySummary(const v1::CapacityResult& result, const v1::CapacitySearch& search);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_CAPACITY_H_
