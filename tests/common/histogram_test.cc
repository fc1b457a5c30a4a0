#include "common/histogram.h"

#include <cmath>
#include <random>
#include <vector>

#include "common/stats.h"
#include "gtest/gtest.h"

namespace ttsbench::common {
namespace {

TEST(LogHistogramTest, BucketsAreContiguousAndTight) {
  for (uint64_t v : {0ull, 1ull, 127ull, 128ull, 129ull, 1000ull, 123456789ull, 1ull << 40}) {
    const uint32_t b = LogHistogram::BucketOf(v);
    EXPECT_LE(LogHistogram::LowerBound(b), v) << v;
    EXPECT_GT(LogHistogram::UpperBound(b), v) << v;
    // Width at most 1/64 of the value.
    EXPECT_LE(static_cast<double>(LogHistogram::UpperBound(b) - LogHistogram::LowerBound(b)),
              std::max(1.0, static_cast<double>(v) / 64.0))
        << v;
  }
  for (uint32_t b = 0; b < 2000; ++b) {
    EXPECT_EQ(LogHistogram::UpperBound(b), LogHistogram::LowerBound(b + 1)) << b;
  }
}

TEST(LogHistogramTest, ReservedRangeNeverGrowsTheBuckets) {
  LogHistogram h;
  h.Reserve(30'000'000);  // 30 s in microseconds
  const size_t capacity = h.capacity();
  ASSERT_GT(capacity, LogHistogram::BucketOf(30'000'000));
  for (uint64_t v = 0; v <= 30'000'000; v = v * 3 + 1) h.Add(v);
  h.Add(30'000'000);
  EXPECT_EQ(h.capacity(), capacity);
  EXPECT_EQ(h.Max(), 30'000'000u);
}

TEST(LogHistogramTest, QuantilesWithinTwoPercentOfExact) {
  std::mt19937_64 rng(5);
  std::lognormal_distribution<double> dist(8.0, 1.2);  // microseconds: ~3 ms median, long tail
  std::vector<double> exact;
  LogHistogram h;
  for (int i = 0; i < 20000; ++i) {
    const uint64_t v = static_cast<uint64_t>(dist(rng));
    exact.push_back(static_cast<double>(v));
    h.Add(v);
  }
  const Summary s = Summarize(exact);
  EXPECT_NEAR(h.Quantile(0.5), s.p50, s.p50 * 0.02);
  EXPECT_NEAR(h.Quantile(0.95), s.p95, s.p95 * 0.02);
  EXPECT_NEAR(h.Quantile(0.99), s.p99, s.p99 * 0.02);
  EXPECT_NEAR(h.Mean(), s.mean, s.mean * 1e-9);
  EXPECT_EQ(h.Max(), static_cast<uint64_t>(s.max));
}

TEST(LogHistogramTest, MergeAndProtoRoundTripKeepCountsAndQuantiles) {
  LogHistogram a, b;
  for (uint64_t v = 0; v < 5000; v += 3) a.Add(v);
  for (uint64_t v = 100; v < 90000; v += 7) b.Add(v);
  LogHistogram merged = a;
  merged.Merge(b);
  EXPECT_EQ(merged.count(), a.count() + b.count());
  const LogHistogram back = LogHistogram::FromProto(merged.ToProto());
  EXPECT_EQ(back.count(), merged.count());
  for (double p : {0.1, 0.5, 0.9, 0.99}) {
    EXPECT_NEAR(back.Quantile(p), merged.Quantile(p), merged.Quantile(p) * 0.016 + 1) << p;
  }
  EXPECT_EQ(LogHistogram().Quantile(0.5), 0);
}

}  // namespace
}  // namespace ttsbench::common
