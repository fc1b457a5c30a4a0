// A mergeable log-linear histogram (HdrHistogram's idea: 64 linear sub-buckets per power of two,
// so any value is kept within 1/64 of itself) for distributions too large to ship raw, such as
// every inter-chunk gap of every streamed request.
#ifndef TTSBENCH_COMMON_HISTOGRAM_H_
#define TTSBENCH_COMMON_HISTOGRAM_H_

#include <cstdint>
#include <vector>

#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::common {

class LogHistogram {
 public:
  void Add(uint64_t value, uint64_t count = 1);
  void Merge(const LogHistogram& other);
  // Room for every value up to `max_value` now, so that adding them later never allocates
  // (the agent's gap histograms: no gap outlasts the request timeout).
  void Reserve(uint64_t max_value);
  size_t capacity() const { return counts_.capacity(); }
  uint64_t count() const { return total_; }
  // Value at quantile p in [0, 1] (the midpoint of the bucket holding that rank); 0 when empty.
  double Quantile(double p) const;
  double Mean() const;
  uint64_t Max() const { return max_; }

  v1::Histogram ToProto() const;
  static LogHistogram FromProto(const v1::Histogram& proto);

  static uint32_t BucketOf(uint64_t value);
  static uint64_t LowerBound(uint32_t bucket);
  static uint64_t UpperBound(uint32_t bucket);  // exclusive

 private:
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  uint64_t max_ = 0;
  double sum_ = 0;
};

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_HISTOGRAM_H_
