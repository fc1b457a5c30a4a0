// The one model of how long a load level may take: every bound of a level (warm-up, measured
// phase, the coordinator's wait for Ready and Done) derived from the plan. The coordinator and
// the agents both call it, so they never disagree about when a level is overdue.
#ifndef TTSBENCH_COMMON_LEVEL_DEADLINES_H_
#define TTSBENCH_COMMON_LEVEL_DEADLINES_H_

#include <cstdint>
#include <string>

#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::common {

// What a level (or one agent's shard of it) asks for.
struct LevelShape {
  bool open_loop = false;
  int concurrency = 0;     // closed loop: virtual users
  double rate = 0;         // open loop: arrivals per second
  int64_t iterations = 0;  // measured requests (0 with duration_s: bound by time only)
  int64_t warmup = 0;      // warm-up requests (ignored when warmup_s > 0)
  double warmup_s = 0;     // warm-up by time
  double duration_s = 0;   // measured phase by time
  double ramp_up_s = 0;
  double think_time_s = 0;
  std::string arrival = "poisson";  // constant | poisson | gamma
  double burstiness = 1;
  double timeout_s = 30;          // per request (0: 30 s)
  double level_time_limit_s = 0;  // explicit bound on the measured phase (0: derived)
};

// Seconds, each counted from the start of what it bounds.
struct LevelDeadlines {
  double warmup_end_s = 0;    // time-based warm-up: no warm-up request starts after this (0: none)
  double warmup_limit_s = 0;  // warm-up (connections included): in-flight cancelled after this
  double measured_end_s = 0;  // time-bound measured phase: no request starts after it (0: none)
  double measured_limit_s = 0;  // measured phase: in-flight requests cancelled after this
  // Coordinator: how long after Assign every Ready must have arrived, and how long after the
  // start instant every Done: the agents' own limits plus room to flush and report.
  double ready_wait_s = 0;
  double done_wait_s = 0;
};

// Room the coordinator leaves beyond an agent's own limit for the last records and Done.
inline constexpr double kReportSlackS = 10;

LevelDeadlines DeriveLevelDeadlines(const LevelShape& shape);

// The shape of a whole level of `load` at `concurrency` (closed) or `rate` (open).
LevelShape ShapeOfLevel(const v1::Load& load, double timeout_s, int concurrency, double rate);

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_LEVEL_DEADLINES_H_
