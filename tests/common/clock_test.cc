#include "common/clock.h"

#include <cstdlib>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace ttsbench::common {
namespace {

// A settable clock: the coordinator's and the agent's, with a fixed true offset between them.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start) : now_(start) {}
  int64_t NowNs() const override { return now_; }
  void Advance(int64_t ns) { now_ += ns; }

 private:
  int64_t now_;
};

// Simulates one probe over a link with the given one-way delays and agent turnaround.
ClockSample Probe(FakeClock& coord, FakeClock& agent, int64_t forward, int64_t back,
                  int64_t turnaround) {
  ClockSample s;
  s.t0 = coord.NowNs();
  coord.Advance(forward);
  agent.Advance(forward);
  s.t1 = agent.NowNs();
  coord.Advance(turnaround);
  agent.Advance(turnaround);
  s.t2 = agent.NowNs();
  coord.Advance(back);
  agent.Advance(back);
  s.t3 = coord.NowNs();
  return s;
}

TEST(EstimateOffsetTest, SymmetricDelaysGiveTheExactOffset) {
  const int64_t offset = 3'600'000'000'000 + 123'456;  // an hour and a bit
  FakeClock coord(1'000'000), agent(1'000'000 + offset);
  std::vector<ClockSample> samples = {Probe(coord, agent, 50'000, 50'000, 10'000)};
  auto est = EstimateOffset(samples);
  ASSERT_TRUE(est.ok());
  EXPECT_EQ(est->offset_ns, offset);
  EXPECT_EQ(est->rtt_ns, 100'000);
  EXPECT_EQ(est->uncertainty_ns, 50'000);
}

TEST(EstimateOffsetTest, KeepsTheMinimumRoundTripUnderAsymmetricDelays) {
  const int64_t offset = -7'000'000'000;  // agent behind by 7 s
  FakeClock coord(50'000'000'000), agent(50'000'000'000 + offset);
  std::mt19937 rng(1);
  std::vector<ClockSample> samples;
  for (int i = 0; i < 16; ++i) {
    // Queueing makes the way out much slower than the way back on most probes.
    const int64_t forward = 200'000 + static_cast<int64_t>(rng() % 2'000'000);
    const int64_t back = 100'000 + static_cast<int64_t>(rng() % 100'000);
    samples.push_back(Probe(coord, agent, forward, back, 20'000));
  }
  // One quiet probe: 60 us out, 40 us back.
  samples.push_back(Probe(coord, agent, 60'000, 40'000, 20'000));
  auto est = EstimateOffset(samples);
  ASSERT_TRUE(est.ok());
  EXPECT_EQ(est->rtt_ns, 100'000);
  EXPECT_EQ(est->offset_ns, offset + (60'000 - 40'000) / 2);
  // The true offset always lies within the stated uncertainty.
  EXPECT_LE(std::llabs(est->offset_ns - offset), est->uncertainty_ns);
  EXPECT_EQ(est->samples, 17u);
}

TEST(EstimateOffsetTest, BoundHoldsForEverySample) {
  std::mt19937 rng(9);
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t offset = static_cast<int64_t>(rng()) - (1LL << 31);
    FakeClock coord(1'000'000'000), agent(1'000'000'000 + offset);
    std::vector<ClockSample> samples;
    for (int i = 0; i < 8; ++i) {
      samples.push_back(
          Probe(coord, agent, 1 + rng() % 5'000'000, 1 + rng() % 5'000'000, rng() % 100'000));
    }
    auto est = EstimateOffset(samples);
    ASSERT_TRUE(est.ok());
    EXPECT_LE(std::llabs(est->offset_ns - offset), est->uncertainty_ns);
  }
}

TEST(EstimateOffsetTest, RejectsImpossibleSamples) {
  std::vector<ClockSample> samples = {{100, 50, 40, 200}, {100, 50, 60, 90}};
  EXPECT_FALSE(EstimateOffset(samples).ok());
  EXPECT_FALSE(EstimateOffset({}).ok());
}

TEST(SteadyClockTest, IsMonotonic) {
  const int64_t a = SteadyClock::Get().NowNs();
  const int64_t b = SteadyNowNs();
  EXPECT_LE(a, b);
}

}  // namespace
}  // namespace ttsbench::common
