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

}  // namespace
}  // namespace ttsbench::agent
