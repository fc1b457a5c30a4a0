// Order statistics used in every output: numpy's default (linear) percentile, and summaries.
#ifndef TTSBENCH_COMMON_STATS_H_
#define TTSBENCH_COMMON_STATS_H_

#include <cstddef>
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

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_STATS_H_
