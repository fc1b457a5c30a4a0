// Per-level statistics exactly as DESIGN.md defines them, from records on the global timeline.
#ifndef TTSBENCH_COMMON_METRICS_H_
#define TTSBENCH_COMMON_METRICS_H_

#include <span>
#include <vector>

#include "common/histogram.h"
#include "common/record_store.h"
#include "common/slo.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::common {

// Warm-up records are counted in warmup_excluded and otherwise ignored; so are requests the tool
// cancelled itself, counted in cancelled. T_wall spans every measured request, failed ones too (a
// failure late in the level widens the window). Latency, RTF and TTFA distributions are over
// successful requests only.
struct LevelOptions {
  std::vector<Slo> slos;                  // for goodput (per-request objectives)
  double stall_threshold_ms = 100;        // continuity-OK bound
  const LogHistogram* gaps_us = nullptr;  // inter-chunk gaps merged from the agents
};

// Memory beyond the records: one double per record. Time: O(n) (percentiles by selection).
v1::LevelStats ComputeLevelStats(int concurrency, const RecordStore& records,
                                 const LevelOptions& options = {});
// For callers holding protos (tests, tools): copies them into a store first.
v1::LevelStats ComputeLevelStats(int concurrency, std::span<const v1::RequestRecord> records,
                                 const LevelOptions& options = {});

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_METRICS_H_
