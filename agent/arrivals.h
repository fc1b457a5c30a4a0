// Open-loop arrival processes: the gaps between intended send times, seeded so a run repeats.
#ifndef TTSBENCH_AGENT_ARRIVALS_H_
#define TTSBENCH_AGENT_ARRIVALS_H_

#include <cstdint>
#include <random>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ttsbench::agent {

class ArrivalProcess {
 public:
  enum class Kind { kConstant, kPoisson, kGamma };

  // rate in requests/s (> 0). Gamma follows vLLM's definition: shape b = burstiness,
  // scale 1 / (rate * b), so the mean gap stays 1/rate and b < 1 is burstier than Poisson.
  ArrivalProcess(Kind kind, double rate, double burstiness, uint64_t seed);

  static absl::StatusOr<Kind> ParseKind(absl::string_view name);

  // Gap to the next arrival, in nanoseconds.
  int64_t NextGapNs();
  double rate() const { return rate_; }

 private:
  Kind kind_;
  double rate_;
  std::mt19937_64 rng_;
  std::exponential_distribution<double> exponential_;
  std::gamma_distribution<double> gamma_;
};

// One sender's slice of a level's arrival schedule. Every sender (each worker thread of each
// agent) draws the same seeded schedule and keeps the arrivals whose share point falls in its
// [begin, end) of [0, 1), so that all senders together send exactly the planned process:
// constant arrivals stay evenly spaced and gamma keeps its burstiness, where independent
// thinner processes superposed would pair up or drift toward Poisson. Share points are a Weyl
// sequence (frac(i * golden ratio), exact in 64-bit fixed point): every slice gets its share of
// any run of arrivals, give or take a few.
class ScheduleSlice {
 public:
  struct Arrival {
    int64_t index = 0;   // in the level's schedule: the request number
    int64_t due_ns = 0;  // from the level's start
  };
  ScheduleSlice(ArrivalProcess::Kind kind, double rate, double burstiness, uint64_t seed,
                double begin, double end);
  // This slice's next arrival ({INT64_MAX, INT64_MAX} for an empty slice).
  Arrival Next();

 private:
  bool Mine(int64_t index) const;

  ArrivalProcess process_;
  bool constant_;
  uint64_t lo_;
  uint64_t hi_;  // UINT64_MAX: up to 1 inclusive
  int64_t index_ = -1;
  int64_t due_ns_ = 0;
};

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_ARRIVALS_H_
