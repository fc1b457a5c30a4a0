#include "agent/arrivals.h"

#include <cmath>
#include <cstdint>

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

namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

uint64_t SharePoint(double fraction) {
  if (fraction <= 0) return 0;
  if (fraction >= 1) return UINT64_MAX;
  return static_cast<uint64_t>(std::ldexp(fraction, 64));
}

}  // namespace

ScheduleSlice::ScheduleSlice(ArrivalProcess::Kind kind, double rate, double burstiness,
                             uint64_t seed, double begin, double end)
    : process_(kind, rate, burstiness, seed),
      constant_(kind == ArrivalProcess::Kind::kConstant),
      lo_(SharePoint(begin)),
      hi_(SharePoint(end)) {}

bool ScheduleSlice::Mine(int64_t index) const {
  const uint64_t point = static_cast<uint64_t>(index) * kGolden;
  return point >= lo_ && (point < hi_ || hi_ == UINT64_MAX);
}

ScheduleSlice::Arrival ScheduleSlice::Next() {
  if (hi_ <= lo_ && hi_ != UINT64_MAX) return {INT64_MAX, INT64_MAX};  // an empty slice
  do {
    // Constant arrivals start at the level's start; random ones one gap in.
    if (index_ >= 0 || !constant_) due_ns_ += process_.NextGapNs();
    ++index_;
  } while (!Mine(index_));
  return {index_, due_ns_};
}

}  // namespace ttsbench::agent
