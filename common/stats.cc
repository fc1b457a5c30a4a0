#include "common/stats.h"

#include <algorithm>
#include <cmath>

namespace ttsbench::common {

double PercentileSorted(const std::vector<double>& sorted, double p) {
  const size_t n = sorted.size();
  if (n == 1) return sorted[0];
  const double h = static_cast<double>(n - 1) * std::clamp(p, 0.0, 1.0);
  const size_t lo = static_cast<size_t>(std::floor(h));
  if (lo + 1 >= n) return sorted[n - 1];
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[lo + 1] - sorted[lo]);
}

Summary Summarize(std::vector<double>& values) {
  Summary s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  double sum = 0;
  for (double v : values) sum += v;
  s.count = values.size();
  s.mean = sum / static_cast<double>(s.count);
  s.p50 = PercentileSorted(values, 0.50);
  s.p95 = PercentileSorted(values, 0.95);
  s.p99 = PercentileSorted(values, 0.99);
  s.max = values.back();
  return s;
}

}  // namespace ttsbench::common
