// Order statistics used in every output: numpy's default (linear) percentile, summaries, and the
// distribution-free intervals and tests that say how well a percentile is known.
#ifndef TTSBENCH_COMMON_STATS_H_
#define TTSBENCH_COMMON_STATS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ttsbench::common {

inline constexpr char kPercentileMethod[] =
    "linear interpolation between closest ranks (numpy default): x[floor(h)] + (h - floor(h)) * "
    "(x[floor(h)+1] - x[floor(h)]), h = (n - 1) * p";

// p in [0, 1]; `sorted` ascending and non-empty.
double PercentileSorted(const std::vector<double>& sorted, double p);

struct Summary {
  double mean = 0;
  double p50 = 0;
  double p95 = 0;
  double p99 = 0;
  double max = 0;
  size_t count = 0;
};

// Sorts `values` in place. An empty input gives an all-zero summary with count 0.
Summary Summarize(std::vector<double>& values);

// A two-sided interval; a side is NaN when the data cannot bound it.
struct Interval {
  double low = 0;
  double high = 0;
};

// Distribution-free confidence interval of the p-quantile: the order statistics [x_(l), x_(u)]
// whose ranks come from Binomial(n, p), so it covers the true quantile with probability at least
// `confidence` whatever the distribution. A side is NaN when the sample is too small to bound it
// (the upper side of a p99 from fewer than 367 values at 95%).
Interval QuantileConfidenceInterval(const std::vector<double>& sorted, double p, double confidence);

// How many samples resolve the p-quantile: enough that about `beyond` of them are expected past
// it on the nearer tail (p99 -> 1000 and p95 -> 200 for 10; p50 -> 20).
int64_t SamplesToResolve(double p, int beyond = 10);

// Two-sided exact test that `a` and `b` share their p-quantile (Mood's quantile test): the pooled
// sample is split at its p-quantile, each side's values above it are counted, and Fisher's exact
// test judges the 2x2 table. It assumes nothing about the distribution and is exact given the
// margins, so two runs of one configuration are flagged at a rate of at most alpha. 1 when either
// side is empty.
double QuantileTestP(const std::vector<double>& a, const std::vector<double>& b, double p);

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_STATS_H_
