#include "common/stats.h"

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

}  // namespace
}  // namespace ttsbench::common
