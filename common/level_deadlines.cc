#include "common/level_deadlines.h"

#include <algorithm>
#include <cmath>

namespace ttsbench::common {
namespace {

// Random arrivals wander: N gaps of a process with coefficient of variation cv sum to N/rate
// give or take cv·sqrt(N)/rate; six of those is a bound a schedule practically never passes.
constexpr double kScheduleSigmas = 6;

double ArrivalCv(const LevelShape& s) {
  if (s.arrival == "constant") return 0;
  if (s.arrival == "gamma") return 1 / std::sqrt(s.burstiness > 0 ? s.burstiness : 1.0);
  return 1;  // poisson
}

// How long `count` open-loop arrivals take to be scheduled.
double ScheduleS(const LevelShape& s, int64_t count) {
  if (count <= 0 || s.rate <= 0) return 0;
  const double n = static_cast<double>(count);
  return (n + kScheduleSigmas * ArrivalCv(s) * std::sqrt(n)) / s.rate;
}

// Closed loop: rounds of requests each user makes to finish `count` between them.
double Rounds(const LevelShape& s, int64_t count) {
  const int64_t users = std::max(1, s.concurrency);
  return static_cast<double>((std::max<int64_t>(0, count) + users - 1) / users);
}

}  // namespace

LevelDeadlines DeriveLevelDeadlines(const LevelShape& s) {
  const double timeout = s.timeout_s > 0 ? s.timeout_s : 30;
  // One request at its worst: a connection set-up and an exchange, each under the timeout.
  const double request = 2 * timeout;
  const double think = std::max(0.0, s.think_time_s);
  LevelDeadlines d;

  // Warm-up: closed-loop users open their connection first (one timeout), then warm up.
  const double connect = s.open_loop ? 0 : timeout;
  if (s.warmup_s > 0) {
    d.warmup_end_s = s.warmup_s;
    d.warmup_limit_s = connect + s.warmup_s + request;
  } else if (s.open_loop) {
    d.warmup_limit_s = s.warmup > 0 ? ScheduleS(s, s.warmup) + request : 0;
  } else {
    d.warmup_limit_s = connect + Rounds(s, s.warmup) * (request + think);
  }

  // Measured phase: by count, by time, or whichever ends first.
  double by_count = 0;
  if (s.iterations > 0) {
    by_count = s.open_loop
                   ? ScheduleS(s, s.iterations) + request
                   : std::max(0.0, s.ramp_up_s) + (Rounds(s, s.iterations) + 1) * (request + think);
  }
  if (s.duration_s > 0) {
    d.measured_end_s = s.duration_s;
    const double by_time = s.duration_s + request;
    d.measured_limit_s = by_count > 0 ? std::min(by_count, by_time) : by_time;
  } else {
    d.measured_limit_s = by_count;
  }
  // An explicit limit is the user's word, longer or shorter than the derived one.
  if (s.level_time_limit_s > 0) d.measured_limit_s = s.level_time_limit_s;

  // The coordinator waits for the agents' limits, one request more (an agent's share can round
  // up to one more request per user than the level's) and the time to report.
  d.ready_wait_s = d.warmup_limit_s + request + kReportSlackS;
  d.done_wait_s = d.measured_limit_s + (s.open_loop ? 0 : request + think) + kReportSlackS;
  return d;
}

LevelShape ShapeOfLevel(const v1::Load& load, double timeout_s, int concurrency, double rate) {
  LevelShape s;
  s.open_loop = load.model() == "open";
  s.concurrency = concurrency;
  s.rate = rate;
  s.iterations = load.iterations();
  s.warmup = load.warmup();
  s.warmup_s = load.warmup_s();
  s.duration_s = load.duration_s();
  s.ramp_up_s = load.ramp_up_s();
  s.think_time_s = load.think_time_s();
  s.arrival = load.arrival().empty() ? "poisson" : load.arrival();
  s.burstiness = load.burstiness() > 0 ? load.burstiness() : 1.0;
  s.timeout_s = timeout_s;
  s.level_time_limit_s = load.level_time_limit_s();
  return s;
}

}  // namespace ttsbench::common
