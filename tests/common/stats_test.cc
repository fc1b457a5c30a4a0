#include "common/stats.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"

namespace ttsbench::common {
namespace {

// Expected values are numpy.percentile(x, q) with the default (linear) method.
TEST(PercentileTest, MatchesNumpyLinear) {
  const std::vector<double> x = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_DOUBLE_EQ(PercentileSorted(x, 0.50), 5.5);
  EXPECT_DOUBLE_EQ(PercentileSorted(x, 0.95), 9.55);
  EXPECT_DOUBLE_EQ(PercentileSorted(x, 0.99), 9.91);
  EXPECT_DOUBLE_EQ(PercentileSorted(x, 0.0), 1);
  EXPECT_DOUBLE_EQ(PercentileSorted(x, 1.0), 10);
  const std::vector<double> y = {15, 20, 35, 40, 50};
  EXPECT_DOUBLE_EQ(PercentileSorted(y, 0.40), 29);
  EXPECT_DOUBLE_EQ(PercentileSorted(y, 0.95), 48);
  EXPECT_DOUBLE_EQ(PercentileSorted({42}, 0.99), 42);
}

TEST(SummarizeTest, SortsAndSummarises) {
  std::vector<double> v = {10, 1, 7, 3};
  const Summary s = Summarize(v);
  EXPECT_EQ(s.count, 4u);
  EXPECT_DOUBLE_EQ(s.mean, 5.25);
  EXPECT_DOUBLE_EQ(s.p50, 5);     // numpy.percentile([1,3,7,10], 50)
  EXPECT_DOUBLE_EQ(s.p95, 9.55);  // 7 + 0.85 * 3
  EXPECT_DOUBLE_EQ(s.max, 10);
  std::vector<double> empty;
  EXPECT_EQ(Summarize(empty).count, 0u);
}

TEST(QuantileConfidenceIntervalTest, MatchesTheClassicMedianRanks) {
  // The textbook 95% interval of a median from 20 values is [x_(6), x_(15)] (coverage 95.9%).
  std::vector<double> x;
  for (int i = 1; i <= 20; ++i) x.push_back(i);
  const Interval ci = QuantileConfidenceInterval(x, 0.5, 0.95);
  EXPECT_DOUBLE_EQ(ci.low, 6);
  EXPECT_DOUBLE_EQ(ci.high, 15);
}

TEST(QuantileConfidenceIntervalTest, AP99FromTooFewValuesHasNoUpperBound) {
  std::vector<double> x;
  for (int i = 1; i <= 50; ++i) x.push_back(i);
  const Interval ci = QuantileConfidenceInterval(x, 0.99, 0.95);
  EXPECT_FALSE(std::isnan(ci.low));
  EXPECT_TRUE(std::isnan(ci.high));
  for (int i = 51; i <= 1000; ++i) x.push_back(i);
  const Interval resolved = QuantileConfidenceInterval(x, 0.99, 0.95);
  EXPECT_LE(resolved.low, 990);
  EXPECT_GE(resolved.high, 990);
  EXPECT_LE(resolved.high, 1000);
  EXPECT_GT(resolved.low, 975);
}

TEST(QuantileConfidenceIntervalTest, CoversTheTrueQuantileAtLeastAsOftenAsPromised) {
  // Exponential(1): the true p95 is ln(20). 2000 samples of 300 values each.
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> exp(1.0);
  const double truth = std::log(20.0);
  int covered = 0;
  constexpr int kTrials = 2000;
  for (int t = 0; t < kTrials; ++t) {
    std::vector<double> x(300);
    for (double& v : x) v = exp(rng);
    std::sort(x.begin(), x.end());
    const Interval ci = QuantileConfidenceInterval(x, 0.95, 0.95);
    covered += ci.low <= truth && truth <= ci.high;
  }
  // Promised >= 95%; the binomial noise of 2000 trials is about 0.5%.
  EXPECT_GE(covered, kTrials * 0.935) << covered;
}

TEST(SamplesToResolveTest, TenBeyondThePercentile) {
  EXPECT_EQ(SamplesToResolve(0.99), 1000);
  EXPECT_EQ(SamplesToResolve(0.95), 200);
  EXPECT_EQ(SamplesToResolve(0.50), 20);
  EXPECT_EQ(SamplesToResolve(0.999, 5), 5000);
}

TEST(QuantileTestPTest, IsFishersExactTestOnThePooledSplit) {
  // Pooled median 5.45: `a` has 1 of 10 above it, `b` 9 of 10. Fisher's exact test of
  // [[1, 9], [9, 1]] gives p = 202 / C(20, 10) = 0.0010933 (R: fisher.test).
  std::vector<double> a = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 10};
  std::vector<double> b = {0.05, 11, 12, 13, 14, 15, 16, 17, 18, 19};
  EXPECT_NEAR(QuantileTestP(a, b, 0.5), 202.0 / 184756.0, 1e-9);
  EXPECT_DOUBLE_EQ(QuantileTestP(a, a, 0.5), 1.0);
  EXPECT_DOUBLE_EQ(QuantileTestP(a, {}, 0.5), 1.0);
}

TEST(QuantileTestPTest, FlagsATwoPercentSlowTailOnP99ButNotOnTheMedian) {
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> latency(std::log(20.0), 0.1);
  std::vector<double> base(1160), cand(1160);
  for (double& v : base) v = latency(rng);
  for (size_t i = 0; i < cand.size(); ++i) cand[i] = latency(rng) * (i % 50 == 0 ? 5 : 1);
  EXPECT_LT(QuantileTestP(base, cand, 0.99), 1e-4);
  EXPECT_GT(QuantileTestP(base, cand, 0.50), 0.01);
}

TEST(QuantileTestPTest, RerunsOfOneDistributionAreFlaggedAtMostAtAlpha) {
  // 1000 pairs of runs from one heavy-tailed distribution; the test is exact, so p < 0.05 must
  // come up in at most ~5% of pairs (conservative, being discrete), for the centre and the tail.
  std::mt19937_64 rng(11);
  std::lognormal_distribution<double> latency(std::log(100.0), 0.6);
  for (double q : {0.5, 0.95, 0.99}) {
    SCOPED_TRACE(q);
    int flagged = 0;
    constexpr int kPairs = 1000;
    for (int t = 0; t < kPairs; ++t) {
      std::vector<double> a(400), b(400);
      for (double& v : a) v = latency(rng);
      for (double& v : b) v = latency(rng);
      flagged += QuantileTestP(a, b, q) < 0.05;
    }
    // 5% of 1000 is 50; allow three binomial standard deviations (~21) of noise.
    EXPECT_LE(flagged, 71) << flagged;
  }
}

}  // namespace
}  // namespace ttsbench::common
