#include "common/histogram.h"

#include <algorithm>
#include <bit>

namespace ttsbench::common {
namespace {

constexpr int kSubBits = 6;
constexpr uint64_t kSub = uint64_t{1} << kSubBits;  // 64

}  // namespace

// Values below 2*kSub get a bucket each; above, bucket = shift * kSub + top, where
// shift = msb - kSubBits >= 1 and top = value >> shift is in [kSub, 2*kSub): each power of two
// is split into kSub equal parts, and bucket numbers continue without a hole.
uint32_t LogHistogram::BucketOf(uint64_t value) {
  if (value < 2 * kSub) return static_cast<uint32_t>(value);
  const int msb = 63 - std::countl_zero(value);
  const int shift = msb - kSubBits;
  return static_cast<uint32_t>(static_cast<uint64_t>(shift) * kSub + (value >> shift));
}

uint64_t LogHistogram::LowerBound(uint32_t bucket) {
  if (bucket < 2 * kSub) return bucket;
  const uint64_t shift = bucket / kSub - 1;
  const uint64_t top = bucket - shift * kSub;  // in [kSub, 2 * kSub)
  return top << shift;
}

uint64_t LogHistogram::UpperBound(uint32_t bucket) {
  if (bucket < 2 * kSub) return uint64_t{bucket} + 1;
  const uint64_t shift = bucket / kSub - 1;
  return LowerBound(bucket) + (uint64_t{1} << shift);
}

void LogHistogram::Add(uint64_t value, uint64_t count) {
  if (count == 0) return;
  const uint32_t b = BucketOf(value);
  if (b >= counts_.size()) counts_.resize(b + 1, 0);
  counts_[b] += count;
  total_ += count;
  max_ = std::max(max_, value);
  sum_ += static_cast<double>(value) * static_cast<double>(count);
}

void LogHistogram::Reserve(uint64_t max_value) { counts_.reserve(BucketOf(max_value) + 1); }

void LogHistogram::Merge(const LogHistogram& other) {
  if (other.counts_.size() > counts_.size()) counts_.resize(other.counts_.size(), 0);
  for (size_t i = 0; i < other.counts_.size(); ++i) counts_[i] += other.counts_[i];
  total_ += other.total_;
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

double LogHistogram::Quantile(double p) const {
  if (total_ == 0) return 0;
  // The rank numpy's linear method would land on, rounded to the bucket that holds it.
  const double rank = std::clamp(p, 0.0, 1.0) * static_cast<double>(total_ - 1);
  uint64_t seen = 0;
  for (size_t b = 0; b < counts_.size(); ++b) {
    seen += counts_[b];
    if (static_cast<double>(seen) > rank) {
      const double lo = static_cast<double>(LowerBound(static_cast<uint32_t>(b)));
      const double hi = static_cast<double>(UpperBound(static_cast<uint32_t>(b)) - 1);
      return std::min((lo + hi) / 2, static_cast<double>(max_));
    }
  }
  return static_cast<double>(max_);
}

double LogHistogram::Mean() const { return total_ == 0 ? 0 : sum_ / static_cast<double>(total_); }

v1::Histogram LogHistogram::ToProto() const {
  v1::Histogram h;
  for (size_t b = 0; b < counts_.size(); ++b) {
    if (counts_[b] == 0) continue;
    h.add_bucket(static_cast<uint32_t>(b));
    h.add_count(counts_[b]);
  }
  return h;
}

LogHistogram LogHistogram::FromProto(const v1::Histogram& proto) {
  LogHistogram h;
  const int n = std::min(proto.bucket_size(), proto.count_size());
  for (int i = 0; i < n; ++i) {
    // Buckets carry their midpoint: exact enough for the mean, exact for counts and quantiles.
    const uint32_t b = proto.bucket(i);
    const uint64_t mid = (LowerBound(b) + UpperBound(b) - 1) / 2;
    h.Add(mid, proto.count(i));
  }
  return h;
}

}  // namespace ttsbench::common
