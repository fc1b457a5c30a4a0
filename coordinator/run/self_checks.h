// Per-level statistics with everything the coordinator knows besides the records (rate, drops,
// skew, SLO verdicts), and the self-checks that say when a number should not be trusted.
#ifndef TTSBENCH_COORDINATOR_SELF_CHECKS_H_
#define TTSBENCH_COORDINATOR_SELF_CHECKS_H_

#include <string>
#include <vector>

#include "common/slo.h"
#include "coordinator/run/orchestrator.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::coordinator {

struct CheckBounds {
  double sched_lag_p99_ms = 10;  // above: the generator, not the server, set the pace
  double agent_cpu_pct = 90;
  double littles_law_tolerance = 0.10;
  double min_requests_per_user = 2;  // closed loop: fewer and the level never reached steady state
  double rate_tolerance = 0.10;      // open loop: achieved vs target
};

// Statistics of one level, SLOs evaluated; warnings appended to `warnings`.
v1::LevelStats BuildLevelStats(const LevelData& level, const v1::Plan& plan,
                               const std::vector<common::Slo>& slos, const CheckBounds& bounds,
                               std::vector<std::string>* warnings);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_SELF_CHECKS_H_
