#include "agent/arrivals.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace ttsbench::agent {

ArrivalProcess::ArrivalProcess(Kind kind, double rate, double burstiness, uint64_t seed)
    : kind_(kind),
      rate_(rate),
      rng_(seed),
      exponential_(rate),
      gamma_(burstiness > 0 ? burstiness : 1.0,
             1.0 / (rate * (burstiness > 0 ? burstiness : 1.0))) {}

absl::StatusOr<ArrivalProcess::Kind> ArrivalProcess::ParseKind(absl::string_view name) {
  if (name == "constant") return Kind::kConstant;
  if (name == "poisson" || name.empty()) return Kind::kPoisson;
  if (name == "gamma") return Kind::kGamma;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown arrival '", name, "' (constant, poisson or gamma)"));
}

int64_t ArrivalProcess::NextGapNs() {
  double seconds = 0;
  switch (kind_) {
    case Kind::kConstant:
      seconds = 1.0 / rate_;
      break;
    case Kind::kPoisson:
      seconds = exponential_(rng_);
      break;
    case Kind::kGamma:
      seconds = gamma_(rng_);
      break;
  }
  return static_cast<int64_t>(std::llround(seconds * 1e9));
}

}  // namespace ttsbench::agent
