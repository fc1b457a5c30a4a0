#include "common/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "boost/math/distributions/binomial.hpp"

namespace ttsbench::common {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Smallest k in [0, n] with cdf(k) >= target; n + 1 when there is none.
int64_t SmallestWithCdfAtLeast(const boost::math::binomial& b, int64_t n, double target) {
  int64_t lo = 0, hi = n + 1;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (boost::math::cdf(b, static_cast<double>(mid)) >= target) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

// log C(n, k).
double LogChoose(double n, double k) {
  return std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1);
}

}  // namespace

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

Interval QuantileConfidenceInterval(const std::vector<double>& sorted, double p,
                                    double confidence) {
  const int64_t n = static_cast<int64_t>(sorted.size());
  if (n == 0 || !(p > 0 && p < 1) || !(confidence > 0 && confidence < 1)) return {kNaN, kNaN};
  // B = #{x_i <= Q_p} ~ Binomial(n, p), and x_(l) <= Q_p <= x_(u) exactly when l <= B <= u - 1
  // (1-based ranks), so the interval covers Q_p with probability cdf(u - 1) - cdf(l - 1).
  const boost::math::binomial b(static_cast<double>(n), p);
  const double tail = (1 - confidence) / 2;
  // l - 1 = the largest k with cdf(k) <= tail; l = 0 means no lower bound.
  const int64_t l = SmallestWithCdfAtLeast(b, n, std::nextafter(tail, 1.0));
  // u - 1 = the smallest k with cdf(k) >= 1 - tail; u = n + 1 means no upper bound.
  const int64_t u = SmallestWithCdfAtLeast(b, n, 1 - tail) + 1;
  Interval out;
  out.low = l >= 1 ? sorted[static_cast<size_t>(l - 1)] : kNaN;
  out.high = u <= n ? sorted[static_cast<size_t>(u - 1)] : kNaN;
  return out;
}

int64_t SamplesToResolve(double p, int beyond) {
  const double tail = std::min(p, 1 - p);
  if (!(tail > 0)) return beyond;
  return static_cast<int64_t>(std::ceil(static_cast<double>(beyond) / tail - 1e-9));
}

double QuantileTestP(const std::vector<double>& a, const std::vector<double>& b, double p) {
  if (a.empty() || b.empty()) return 1;
  std::vector<double> pooled;
  pooled.reserve(a.size() + b.size());
  pooled.insert(pooled.end(), a.begin(), a.end());
  pooled.insert(pooled.end(), b.begin(), b.end());
  std::sort(pooled.begin(), pooled.end());
  const double cut = PercentileSorted(pooled, p);
  auto above = [cut](const std::vector<double>& v) {
    return static_cast<double>(
        std::count_if(v.begin(), v.end(), [cut](double x) { return x > cut; }));
  };
  const double n1 = static_cast<double>(a.size());
  const double total = static_cast<double>(pooled.size());
  const double r = above(a) + above(b);  // the margin: values above the cut in both runs
  if (r <= 0 || r >= total) return 1;
  // Under "same quantile" the count above the cut in `a` is hypergeometric(total, r, n1).
  const double log_denominator = LogChoose(total, n1);
  auto log_pmf = [&](double k) {
    return LogChoose(r, k) + LogChoose(total - r, n1 - k) - log_denominator;
  };
  const double observed = log_pmf(above(a));
  double p_value = 0;
  const double k_lo = std::max(0.0, r - (total - n1)), k_hi = std::min(r, n1);
  for (double k = k_lo; k <= k_hi; ++k) {
    const double lp = log_pmf(k);
    // As R's fisher.test: every table no more likely than the observed one, with a relative
    // tolerance so that floating-point noise does not drop ties.
    if (lp <= observed + 1e-7) p_value += std::exp(lp);
  }
  return std::min(1.0, p_value);
}

}  // namespace ttsbench::common
