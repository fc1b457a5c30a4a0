// Steady-clock time source (injectable) and the NTP-style offset estimate between two clocks.
#ifndef TTSBENCH_COMMON_CLOCK_H_
#define TTSBENCH_COMMON_CLOCK_H_

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"

namespace ttsbench::common {

// A monotonic clock in nanoseconds. Never a wall clock: durations only.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowNs() const = 0;
};

class SteadyClock final : public Clock {
 public:
  int64_t NowNs() const override;
  static const SteadyClock& Get();
};

// Inline fast path for hot code that cannot afford a virtual call.
int64_t SteadyNowNs();

// One four-timestamp exchange: t0 = coordinator send, t1 = agent receive, t2 = agent send,
// t3 = coordinator receive. t0/t3 on the coordinator's clock, t1/t2 on the agent's.
struct ClockSample {
  int64_t t0 = 0;
  int64_t t1 = 0;
  int64_t t2 = 0;
  int64_t t3 = 0;
};

// agent_clock = coordinator_clock + offset_ns, known to within +-uncertainty_ns.
struct OffsetEstimate {
  int64_t offset_ns = 0;
  int64_t uncertainty_ns = 0;
  int64_t rtt_ns = 0;
  uint32_t samples = 0;
};

// Keeps the sample with the smallest round trip (the least queueing):
// offset = ((t1 - t0) + (t2 - t3)) / 2, uncertainty = rtt / 2, rtt = (t3 - t0) - (t2 - t1).
absl::StatusOr<OffsetEstimate> EstimateOffset(std::span<const ClockSample> samples);

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_CLOCK_H_
