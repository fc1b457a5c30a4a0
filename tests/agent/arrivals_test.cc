#include "agent/arrivals.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace ttsbench::agent {
namespace {

struct Moments {
  double mean_s = 0;
  double cv = 0;  // coefficient of variation of the gaps
};

Moments Measure(ArrivalProcess& p, int n, std::vector<double>* gaps = nullptr) {
  double sum = 0, sum2 = 0;
  for (int i = 0; i < n; ++i) {
    const double g = static_cast<double>(p.NextGapNs()) / 1e9;
    if (gaps) gaps->push_back(g);
    sum += g;
    sum2 += g * g;
  }
  const double mean = sum / n;
  const double var = sum2 / n - mean * mean;
  return {mean, std::sqrt(std::max(0.0, var)) / mean};
}

TEST(ArrivalProcessTest, ConstantHasExactGaps) {
  ArrivalProcess p(ArrivalProcess::Kind::kConstant, 250, 1, 1);
  const Moments m = Measure(p, 1000);
  EXPECT_NEAR(m.mean_s, 0.004, 1e-9);
  EXPECT_NEAR(m.cv, 0, 1e-6);
}

TEST(ArrivalProcessTest, PoissonHasTheRateAndUnitDispersion) {
  ArrivalProcess p(ArrivalProcess::Kind::kPoisson, 2000, 1, 7);
  std::vector<double> gaps;
  const Moments m = Measure(p, 200000, &gaps);
  EXPECT_NEAR(1 / m.mean_s, 2000, 2000 * 0.01);
  EXPECT_NEAR(m.cv, 1.0, 0.02);
  // Kolmogorov-Smirnov against Exp(2000): D below the 1% critical value 1.63/sqrt(n).
  std::sort(gaps.begin(), gaps.end());
  double d = 0;
  const double n = static_cast<double>(gaps.size());
  for (size_t i = 0; i < gaps.size(); ++i) {
    const double cdf = 1 - std::exp(-2000 * gaps[i]);
    d = std::max({d, cdf - i / n, (i + 1) / n - cdf});
  }
  EXPECT_LT(d, 1.63 / std::sqrt(n));
}

TEST(ArrivalProcessTest, GammaBurstinessFollowsVllmDefinition) {
  // Shape b, scale 1/(rate*b): mean 1/rate, CV 1/sqrt(b).
  for (double b : {0.25, 1.0, 4.0}) {
    ArrivalProcess p(ArrivalProcess::Kind::kGamma, 100, b, 3);
    const Moments m = Measure(p, 200000);
    EXPECT_NEAR(1 / m.mean_s, 100, 100 * 0.015) << b;
    EXPECT_NEAR(m.cv, 1 / std::sqrt(b), 0.03 / std::sqrt(b)) << b;
  }
}

TEST(ArrivalProcessTest, SameSeedSameSchedule) {
  ArrivalProcess a(ArrivalProcess::Kind::kPoisson, 10, 1, 99),
      b(ArrivalProcess::Kind::kPoisson, 10, 1, 99);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.NextGapNs(), b.NextGapNs());
}

TEST(ArrivalProcessTest, ParsesKinds) {
  EXPECT_TRUE(ArrivalProcess::ParseKind("gamma").ok());
  EXPECT_FALSE(ArrivalProcess::ParseKind("uniform").ok());
}

// Every slice of [0, 1) that senders were given, each drawing the same seeded schedule.
std::vector<std::vector<ScheduleSlice::Arrival>> Slices(ArrivalProcess::Kind kind, double rate,
                                                        double burstiness,
                                                        const std::vector<double>& bounds,
                                                        int64_t count) {
  std::vector<std::vector<ScheduleSlice::Arrival>> out;
  for (size_t k = 0; k + 1 < bounds.size(); ++k) {
    ScheduleSlice slice(kind, rate, burstiness, 42, bounds[k], bounds[k + 1]);
    out.emplace_back();
    for (auto a = slice.Next(); a.index < count; a = slice.Next()) out.back().push_back(a);
  }
  return out;
}

std::vector<int64_t> MergedDue(const std::vector<std::vector<ScheduleSlice::Arrival>>& slices,
                               int64_t count) {
  std::vector<int64_t> due(static_cast<size_t>(count), -1);
  for (const auto& slice : slices) {
    for (const auto& a : slice) {
      EXPECT_EQ(due[static_cast<size_t>(a.index)], -1) << "arrival " << a.index << " sent twice";
      due[static_cast<size_t>(a.index)] = a.due_ns;
    }
  }
  for (int64_t d : due) EXPECT_GE(d, 0) << "an arrival nobody sends";
  return due;
}

TEST(ScheduleSliceTest, ConstantArrivalsOfTwoSendersAreEvenlySpacedNotPaired) {
  // Two agents (or threads) at 100/s together: one arrival every 10 ms, not two every 20 ms.
  const auto slices = Slices(ArrivalProcess::Kind::kConstant, 100, 1, {0, 0.5, 1}, 1000);
  const std::vector<int64_t> due = MergedDue(slices, 1000);
  for (size_t i = 0; i < due.size(); ++i) {
    EXPECT_EQ(due[i], static_cast<int64_t>(i) * 10'000'000) << i;
  }
  // Each sender gets its half, give or take a few.
  EXPECT_NEAR(static_cast<double>(slices[0].size()), 500, 3);
}

TEST(ScheduleSliceTest, WeightedSlicesGetTheirShareOfEveryStretch) {
  const auto slices = Slices(ArrivalProcess::Kind::kPoisson, 1000, 1, {0, 0.25, 1}, 4000);
  MergedDue(slices, 4000);
  EXPECT_NEAR(static_cast<double>(slices[0].size()), 1000, 5);
  // ...and in every stretch of 100 arrivals, not just overall.
  int in_first_100 = 0;
  for (const auto& a : slices[0]) in_first_100 += a.index < 100;
  EXPECT_NEAR(in_first_100, 25, 3);
}

TEST(ScheduleSliceTest, GammaBurstinessIsPreservedAcrossSenders) {
  // Eight senders (agents x threads) at burstiness 0.25: together the gaps keep CV 2. Eight
  // independent gamma processes superposed would have drifted toward Poisson (CV 1).
  std::vector<double> bounds;
  for (int k = 0; k <= 8; ++k) bounds.push_back(k / 8.0);
  const int64_t n = 200000;
  const auto slices = Slices(ArrivalProcess::Kind::kGamma, 100, 0.25, bounds, n);
  const std::vector<int64_t> due = MergedDue(slices, n);
  double sum = 0, sum2 = 0;
  for (size_t i = 1; i < due.size(); ++i) {
    const double g = static_cast<double>(due[i] - due[i - 1]) / 1e9;
    sum += g;
    sum2 += g * g;
  }
  const double count = static_cast<double>(due.size() - 1);
  const double mean = sum / count;
  const double cv = std::sqrt(sum2 / count - mean * mean) / mean;
  EXPECT_NEAR(1 / mean, 100, 100 * 0.02);
  EXPECT_NEAR(cv, 2.0, 0.06);
}

TEST(ScheduleSliceTest, EmptySliceHasNoArrivals) {
  ScheduleSlice slice(ArrivalProcess::Kind::kPoisson, 10, 1, 1, 0.5, 0.5);
  EXPECT_EQ(slice.Next().index, INT64_MAX);
}

}  // namespace
}  // namespace ttsbench::agent
