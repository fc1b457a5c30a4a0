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

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_ARRIVALS_H_
