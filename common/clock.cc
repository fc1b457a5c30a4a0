#include "common/clock.h"

#include <chrono>
#include <limits>

#include "absl/status/status.h"

namespace ttsbench::common {

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t SteadyClock::NowNs() const { return SteadyNowNs(); }

const SteadyClock& SteadyClock::Get() {
  static const SteadyClock clock;
  return clock;
}

absl::StatusOr<OffsetEstimate> EstimateOffset(std::span<const ClockSample> samples) {
  OffsetEstimate best;
  int64_t best_rtt = std::numeric_limits<int64_t>::max();
  uint32_t valid = 0;
  for (const ClockSample& s : samples) {
    const int64_t rtt = (s.t3 - s.t0) - (s.t2 - s.t1);
    // A negative round trip or an agent that answered before it received is a broken sample.
    if (s.t3 < s.t0 || s.t2 < s.t1 || rtt < 0) continue;
    ++valid;
    if (rtt < best_rtt) {
      best_rtt = rtt;
      best.offset_ns = ((s.t1 - s.t0) + (s.t2 - s.t3)) / 2;
      best.rtt_ns = rtt;
      best.uncertainty_ns = rtt / 2;
    }
  }
  if (valid == 0) return absl::InvalidArgumentError("no valid clock samples");
  best.samples = valid;
  return best;
}

}  // namespace ttsbench::common
