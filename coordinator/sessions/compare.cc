#include "coordinator/sessions/compare.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "boost/math/distributions/normal.hpp"
#include "common/csv.h"
#include "common/json.h"
#include "common/record_store.h"
#include "common/records.h"
#include "common/stats.h"
#include "coordinator/report/report.h"

namespace ttsbench::coordinator {
namespace {

namespace fs = std::filesystem;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Where a metric's per-request evidence comes from.
enum class Source { kAsps, kRps, kLatency, kTtfa, kRtf, kSuccess };

struct MetricDef {
  const char* name;
  Source source;
  double quantile;  // < 0: the mean
  bool higher_is_better;
  const char* unit;  // for absolute --fail-on thresholds
  double (*value)(const v1::LevelStats&);
};

const MetricDef kMetrics[] = {
    {"asps", Source::kAsps, -1, true, "", [](const v1::LevelStats& l) { return l.asps(); }},
    {"rps", Source::kRps, -1, true, "", [](const v1::LevelStats& l) { return l.rps(); }},
    {"rtf_mean", Source::kRtf, -1, false, "",
     [](const v1::LevelStats& l) { return l.rtf().mean(); }},
    {"rtf_p95", Source::kRtf, 0.95, false, "",
     [](const v1::LevelStats& l) { return l.rtf().p95(); }},
    {"ttfa_p50", Source::kTtfa, 0.50, false, "ms",
     [](const v1::LevelStats& l) { return l.ttfa_ms().p50(); }},
    {"ttfa_p95", Source::kTtfa, 0.95, false, "ms",
     [](const v1::LevelStats& l) { return l.ttfa_ms().p95(); }},
    {"ttfa_p99", Source::kTtfa, 0.99, false, "ms",
     [](const v1::LevelStats& l) { return l.ttfa_ms().p99(); }},
    {"latency_p50", Source::kLatency, 0.50, false, "ms",
     [](const v1::LevelStats& l) { return l.latency_ms().p50(); }},
    {"latency_p95", Source::kLatency, 0.95, false, "ms",
     [](const v1::LevelStats& l) { return l.latency_ms().p95(); }},
    {"latency_p99", Source::kLatency, 0.99, false, "ms",
     [](const v1::LevelStats& l) { return l.latency_ms().p99(); }},
    {"success_rate", Source::kSuccess, -1, true, "pp",
     [](const v1::LevelStats& l) { return l.success_rate_pct(); }},
};

const MetricDef* FindMetric(absl::string_view name) {
  for (const MetricDef& m : kMetrics) {
    if (name == m.name) return &m;
  }
  return nullptr;
}

// ---------------------------------------------------------------- per-request evidence

struct Samples {
  std::vector<double> latency_ms, ttfa_ms, rtf;  // measured, successful
  // The time window (below) each of those requests started in: the blocks of the bootstrap.
  std::vector<uint32_t> latency_block, ttfa_block, rtf_block;
  std::vector<double> asps_windows, rps_windows;
  size_t measured = 0;
  int64_t t0 = 0;       // start of window 0
  double width_ns = 0;  // window width; 0 when the level is too short to be cut
  size_t windows = 0;
};

// Throughput has no per-request value, so it is judged over time windows: the level's window
// [first start, last end] is cut into K equal slices and each successful request's audio seconds
// (and its count, for RPS) is spread over the slices its [start, end] overlaps, in proportion.
// The mean of the slice rates is then exactly the level's ASPS (or RPS), and the spread between
// slices is the run's own throughput noise (bursts, stalls, GC pauses) that a bootstrap over
// single requests would not see. Slices are at least one mean latency wide, so most requests fall
// in one or two slices, and K <= 50 keeps each slice's count meaningful.
void ThroughputWindows(const common::RecordStore& records, Samples* out) {
  int64_t t0 = std::numeric_limits<int64_t>::max(), t1 = std::numeric_limits<int64_t>::min();
  double latency_sum = 0;
  size_t ok = 0;
  for (const common::Record& r : records) {
    if (r.warmup || r.start_ns <= 0 || r.end_ns < r.start_ns) continue;
    t0 = std::min(t0, r.start_ns);
    t1 = std::max(t1, r.end_ns);
    if (common::Succeeded(r)) {
      latency_sum += static_cast<double>(r.end_ns - r.start_ns);
      ++ok;
    }
  }
  if (ok == 0 || t1 <= t0) return;
  const double span = static_cast<double>(t1 - t0);
  const double mean_latency = std::max(latency_sum / static_cast<double>(ok), 1.0);
  const size_t k = std::min<size_t>(
      {50, ok / 4, static_cast<size_t>(std::max(0.0, std::floor(span / mean_latency)))});
  if (k < 2) return;
  const double width = span / static_cast<double>(k);
  out->t0 = t0;
  out->width_ns = width;
  out->windows = k;
  std::vector<double> audio(k, 0), count(k, 0);
  for (const common::Record& r : records) {
    if (r.warmup || r.start_ns <= 0 || r.end_ns < r.start_ns || !common::Succeeded(r)) {
      continue;
    }
    const double s = static_cast<double>(r.start_ns - t0);
    const double e = static_cast<double>(r.end_ns - t0);
    const size_t bs = std::min(k - 1, static_cast<size_t>(s / width));
    const size_t be = std::min(k - 1, static_cast<size_t>(e / width));
    if (bs == be || e <= s) {
      audio[bs] += r.audio_s;
      count[bs] += 1;
      continue;
    }
    for (size_t b = bs; b <= be; ++b) {
      const double lo = std::max(s, static_cast<double>(b) * width);
      const double hi = std::min(e, static_cast<double>(b + 1) * width);
      const double share = std::max(0.0, hi - lo) / (e - s);
      audio[b] += r.audio_s * share;
      count[b] += share;
    }
  }
  const double width_s = width / 1e9;
  for (size_t b = 0; b < k; ++b) {
    out->asps_windows.push_back(audio[b] / width_s);
    out->rps_windows.push_back(count[b] / width_s);
  }
}

Samples Collect(const LevelData* data) {
  Samples s;
  if (data == nullptr) return s;
  ThroughputWindows(data->records, &s);
  for (const common::Record& r : data->records) {
    if (r.warmup) continue;
    ++s.measured;
    if (!common::Succeeded(r) || r.end_ns < r.start_ns) continue;
    uint32_t block = 0;
    if (s.windows > 0) {
      const double at = static_cast<double>(r.start_ns - s.t0) / s.width_ns;
      block = static_cast<uint32_t>(std::clamp(at, 0.0, static_cast<double>(s.windows - 1)));
    }
    const double latency_ns = static_cast<double>(r.end_ns - r.start_ns);
    s.latency_ms.push_back(latency_ns / 1e6);
    s.latency_block.push_back(block);
    if (r.first_audio_ns > 0) {
      s.ttfa_ms.push_back(static_cast<double>(r.first_audio_ns - r.start_ns) / 1e6);
      s.ttfa_block.push_back(block);
    }
    if (r.audio_s > 0) {
      s.rtf.push_back(latency_ns / 1e9 / r.audio_s);
      s.rtf_block.push_back(block);
    }
  }
  return s;
}

const std::vector<double>& SamplesFor(const Samples& s, Source src) {
  switch (src) {
    case Source::kAsps:
      return s.asps_windows;
    case Source::kRps:
      return s.rps_windows;
    case Source::kLatency:
      return s.latency_ms;
    case Source::kTtfa:
      return s.ttfa_ms;
    case Source::kRtf:
    case Source::kSuccess:  // judged from counts, never asked for
      break;
  }
  return s.rtf;
}

// A source's samples grouped by block: block j is values[offsets[j], offsets[j + 1]).
struct Blocked {
  std::vector<double> values;
  std::vector<size_t> offsets;
  size_t blocks() const { return offsets.size() - 1; }
};

// Per-request samples are grouped by the time window they started in, so the bootstrap resamples
// stretches of the run rather than single requests: slow requests come in bursts (a GC pause, a
// noisy neighbour), and a bootstrap that treats them as independent calls a burst in one run a
// regression. Throughput windows, and levels too short to cut, are their own blocks.
Blocked BlocksFor(const Samples& s, Source src) {
  const std::vector<double>& values = SamplesFor(s, src);
  const std::vector<uint32_t>* ids = src == Source::kLatency ? &s.latency_block
                                     : src == Source::kTtfa  ? &s.ttfa_block
                                     : src == Source::kRtf   ? &s.rtf_block
                                                             : nullptr;
  Blocked b;
  if (ids == nullptr || s.windows < 2 || ids->size() != values.size()) {
    b.values = values;
    for (size_t i = 0; i <= values.size(); ++i) b.offsets.push_back(i);
    return b;
  }
  b.offsets.assign(s.windows + 1, 0);
  for (uint32_t id : *ids) ++b.offsets[id + 1];
  for (size_t j = 1; j < b.offsets.size(); ++j) b.offsets[j] += b.offsets[j - 1];
  b.values.resize(values.size());
  std::vector<size_t> next(b.offsets.begin(), b.offsets.end() - 1);
  for (size_t i = 0; i < values.size(); ++i) b.values[next[(*ids)[i]]++] = values[i];
  return b;
}

// ---------------------------------------------------------------- tests

// Two-sided Mann-Whitney U test, normal approximation with tie correction and continuity
// correction. Rank-based, so one slow outlier cannot make a difference significant by itself.
double MannWhitneyP(const std::vector<double>& a, const std::vector<double>& b) {
  const double n1 = static_cast<double>(a.size()), n2 = static_cast<double>(b.size());
  const double n = n1 + n2;
  std::vector<std::pair<double, bool>> all;
  all.reserve(a.size() + b.size());
  for (double v : a) all.emplace_back(v, true);
  for (double v : b) all.emplace_back(v, false);
  std::sort(all.begin(), all.end());
  double rank_sum_a = 0, ties = 0;
  for (size_t i = 0; i < all.size();) {
    size_t j = i;
    while (j < all.size() && all[j].first == all[i].first) ++j;
    const double t = static_cast<double>(j - i);
    const double avg_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (size_t k = i; k < j; ++k) {
      if (all[k].second) rank_sum_a += avg_rank;
    }
    ties += t * t * t - t;
    i = j;
  }
  const double u = rank_sum_a - n1 * (n1 + 1) / 2;
  const double mu = n1 * n2 / 2;
  const double var = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)));
  if (var <= 0) return 1.0;
  const double z = std::max(0.0, std::abs(u - mu) - 0.5) / std::sqrt(var);
  const boost::math::normal normal;
  return std::min(1.0, 2 * boost::math::cdf(boost::math::complement(normal, z)));
}

double Statistic(std::vector<double>& v, double quantile, bool sorted) {
  if (quantile < 0) {
    double sum = 0;
    for (double x : v) sum += x;
    return sum / static_cast<double>(v.size());
  }
  if (!sorted) std::sort(v.begin(), v.end());
  return common::PercentileSorted(v, quantile);
}

struct Interval {
  double low = kNaN, high = kNaN;
  double p = kNaN;  // two-sided bootstrap p-value of "delta = 0": the interval, inverted
};

// Percentile-bootstrap (1 - alpha) intervals of stat(candidate) - stat(baseline), one per
// quantile (< 0: mean), from the same resamples. Each side is resampled on its own (the runs are
// independent), block by block (see BlocksFor).
std::vector<Interval> BootstrapDeltas(const Blocked& base, const Blocked& cand,
                                      const std::vector<double>& quantiles, int resamples,
                                      double alpha, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick_a(0, base.blocks() - 1), pick_b(0, cand.blocks() - 1);
  std::vector<std::vector<double>> deltas(quantiles.size());
  std::vector<double> ra, rb;
  ra.reserve(base.values.size() * 2);
  rb.reserve(cand.values.size() * 2);
  auto resample = [&rng](const Blocked& from, std::uniform_int_distribution<size_t>& pick,
                         std::vector<double>& to) {
    to.clear();
    for (size_t j = 0; j < from.blocks(); ++j) {
      const size_t b = pick(rng);
      to.insert(to.end(), from.values.begin() + static_cast<std::ptrdiff_t>(from.offsets[b]),
                from.values.begin() + static_cast<std::ptrdiff_t>(from.offsets[b + 1]));
    }
  };
  const bool any_quantile =
      std::any_of(quantiles.begin(), quantiles.end(), [](double q) { return q >= 0; });
  for (int i = 0; i < resamples; ++i) {
    resample(base, pick_a, ra);
    resample(cand, pick_b, rb);
    if (ra.empty() || rb.empty()) continue;  // only empty blocks drawn
    if (any_quantile) {
      std::sort(ra.begin(), ra.end());
      std::sort(rb.begin(), rb.end());
    }
    for (size_t q = 0; q < quantiles.size(); ++q) {
      deltas[q].push_back(Statistic(rb, quantiles[q], true) - Statistic(ra, quantiles[q], true));
    }
  }
  std::vector<Interval> out;
  for (std::vector<double>& d : deltas) {
    if (d.empty()) {
      out.push_back({});
      continue;
    }
    std::sort(d.begin(), d.end());
    const double n = static_cast<double>(d.size());
    const double at_or_below =
        static_cast<double>(std::upper_bound(d.begin(), d.end(), 0.0) - d.begin());
    const double at_or_above =
        static_cast<double>(d.end() - std::lower_bound(d.begin(), d.end(), 0.0));
    out.push_back({common::PercentileSorted(d, alpha / 2),
                   common::PercentileSorted(d, 1 - alpha / 2),
                   std::min(1.0, (2 * std::min(at_or_below, at_or_above) + 1) / (n + 1))});
  }
  return out;
}

// Block-bootstrap (1 - alpha) interval and p-value of share_above(candidate) -
// share_above(baseline), the shares of requests slower than `cut` (the pooled quantile). A
// percentile moved exactly when the share of requests beyond a fixed point moved, and this share
// is far steadier than the resampled p99 itself: a 2% tail behind a p99 leaves some resamples
// with too few slow requests to reach the p99, but hardly any with no more of them than the
// baseline. Blocks as in BootstrapDeltas; a block is just two counts here, so this is cheap.
Interval BootstrapTailShare(const Blocked& base, const Blocked& cand, double cut, int resamples,
                            double alpha, uint64_t seed) {
  struct Counts {
    std::vector<double> above, total;
  };
  auto count = [cut](const Blocked& b) {
    Counts c;
    for (size_t j = 0; j < b.blocks(); ++j) {
      const auto first = b.values.begin() + static_cast<std::ptrdiff_t>(b.offsets[j]);
      const auto last = b.values.begin() + static_cast<std::ptrdiff_t>(b.offsets[j + 1]);
      c.above.push_back(
          static_cast<double>(std::count_if(first, last, [cut](double x) { return x > cut; })));
      c.total.push_back(static_cast<double>(last - first));
    }
    return c;
  };
  const Counts ca = count(base), cb = count(cand);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick_a(0, base.blocks() - 1), pick_b(0, cand.blocks() - 1);
  auto share = [&rng](const Counts& c, std::uniform_int_distribution<size_t>& pick) {
    double above = 0, total = 0;
    for (size_t j = 0; j < c.total.size(); ++j) {
      const size_t b = pick(rng);
      above += c.above[b];
      total += c.total[b];
    }
    return total > 0 ? above / total : kNaN;
  };
  std::vector<double> d;
  d.reserve(static_cast<size_t>(resamples));
  for (int i = 0; i < resamples; ++i) {
    const double sa = share(ca, pick_a), sb = share(cb, pick_b);
    if (!std::isnan(sa) && !std::isnan(sb)) d.push_back(sb - sa);
  }
  if (d.empty()) return {};
  std::sort(d.begin(), d.end());
  const double n = static_cast<double>(d.size());
  const double at_or_below =
      static_cast<double>(std::upper_bound(d.begin(), d.end(), 0.0) - d.begin());
  const double at_or_above =
      static_cast<double>(d.end() - std::lower_bound(d.begin(), d.end(), 0.0));
  return {common::PercentileSorted(d, alpha / 2), common::PercentileSorted(d, 1 - alpha / 2),
          std::min(1.0, (2 * std::min(at_or_below, at_or_above) + 1) / (n + 1))};
}

// Resamples fall as levels grow, so a 100k-request level still compares in seconds.
int Resamples(const CompareOptions& o, size_t n) {
  const double budget = 4e7 / static_cast<double>(std::max<size_t>(n, 1));
  return std::max(std::min(o.bootstrap_resamples, static_cast<int>(budget)),
                  std::min(o.bootstrap_resamples, 200));
}

void Decide(const MetricDef& def, const CompareOptions& o, MetricComparison* m) {
  const bool ci_agrees = (m->delta > 0 && m->moved_low > 0) || (m->delta < 0 && m->moved_high < 0);
  m->significant = !std::isnan(m->p_value) && m->p_value < o.alpha && ci_agrees;
  const bool practical =
      def.source == Source::kSuccess
          ? std::abs(m->delta) >= o.min_effect_success_pp
          : (std::isnan(m->delta_pct) ? m->delta != 0 : std::abs(m->delta_pct) >= o.min_effect_pct);
  if (!m->significant || !practical) {
    m->verdict = Verdict::kNoChange;
    return;
  }
  const bool worse = def.higher_is_better ? m->delta < 0 : m->delta > 0;
  m->verdict = worse ? Verdict::kRegressed : Verdict::kImproved;
}

// Two-proportion z test on attempted/successful counts; Wald interval of the difference in
// percentage points. Counts come from the level statistics, so this works without requests.csv.
void CompareSuccess(const v1::LevelStats& a, const v1::LevelStats& b, const CompareOptions& o,
                    MetricComparison* m) {
  const double n1 = a.attempted(), n2 = b.attempted();
  if (n1 < o.min_samples || n2 < o.min_samples) return;
  const double p1 = a.successful() / n1, p2 = b.successful() / n2;
  const double pooled = (a.successful() + b.successful()) / (n1 + n2);
  const double se0 = std::sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  const boost::math::normal normal;
  m->p_value =
      se0 > 0 ? 2 * boost::math::cdf(boost::math::complement(normal, std::abs(p2 - p1) / se0)) : 1;
  const double se = std::sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2);
  const double z = boost::math::quantile(normal, 1 - o.alpha / 2);
  m->ci_low = 100 * (p2 - p1 - z * se);
  m->ci_high = 100 * (p2 - p1 + z * se);
}

struct LevelKey {
  std::string series;
  bool open_loop;
  double load;
  bool Matches(const LevelKey& o) const {
    return series == o.series && open_loop == o.open_loop &&
           std::abs(load - o.load) <= 1e-9 * std::max(1.0, std::abs(load));
  }
};

LevelKey KeyOf(const v1::LevelStats& l) {
  return {l.series(), l.rate() > 0, l.rate() > 0 ? l.rate() : static_cast<double>(l.concurrency())};
}

const LevelData* RecordsOf(const LoadedSession& s, int level) {
  if (s.levels.size() != static_cast<size_t>(s.session.levels_size())) return nullptr;
  return &s.levels[static_cast<size_t>(level)];
}

std::string SessionName(const LoadedSession& s) {
  if (!s.session.name().empty()) return s.session.name();
  return s.dir.empty() ? "(unnamed)" : fs::path(s.dir).filename().string();
}

LevelComparison CompareLevel(const v1::LevelStats& a, const LevelData* ra, const v1::LevelStats& b,
                             const LevelData* rb, const CompareOptions& o, uint64_t seed) {
  LevelComparison lc;
  lc.label = LevelLabel(a);
  lc.series = a.series();
  lc.concurrency = a.concurrency();
  lc.rate = a.rate();
  const Samples sa = Collect(ra), sb = Collect(rb);
  lc.baseline_samples = sa.measured;
  lc.candidate_samples = sb.measured;

  for (const MetricDef& def : kMetrics) {
    MetricComparison m;
    m.metric = def.name;
    m.baseline = def.value(a);
    m.candidate = def.value(b);
    m.delta = m.candidate - m.baseline;
    m.delta_pct = m.baseline != 0 ? 100 * m.delta / std::abs(m.baseline) : kNaN;
    m.p_value = kNaN;
    lc.metrics.push_back(m);
  }
  // One bootstrap per source covers all of its statistics.
  uint64_t source_seed = seed;
  for (Source src : {Source::kAsps, Source::kRps, Source::kLatency, Source::kTtfa, Source::kRtf}) {
    ++source_seed;
    const std::vector<double>& xa = SamplesFor(sa, src);
    const std::vector<double>& xb = SamplesFor(sb, src);
    const size_t min_n = static_cast<size_t>(std::max(o.min_samples, 2));
    if (xa.size() < min_n || xb.size() < min_n) {
      const bool windows = src == Source::kAsps || src == Source::kRps;
      const std::string why = absl::StrCat(
          windows ? "time windows" : "requests with a value", ": baseline ", xa.size(),
          ", candidate ", xb.size(), ", ", min_n, " needed on each side",
          windows ? "; a window is at least one mean latency and 4 requests wide" : "");
      for (MetricComparison& m : lc.metrics) {
        if (FindMetric(m.metric)->source == src) m.why_no_data = why;
      }
      continue;
    }
    std::vector<size_t> idx;
    std::vector<double> quantiles;
    for (size_t i = 0; i < std::size(kMetrics); ++i) {
      if (kMetrics[i].source != src) continue;
      idx.push_back(i);
      quantiles.push_back(kMetrics[i].quantile);
    }
    // Each metric by a test of that very statistic. A percentile: the exact quantile test (a
    // slow 2% moves the p99 but hardly the ranks), which takes requests as independent, and the
    // time-block bootstrap of the share beyond the pooled quantile, which does not; its p-value is
    // the larger of the two, so a burst of slow requests in one run is not called a regression,
    // and the verdict needs that share's interval to exclude 0. A mean: Mann-Whitney, and the
    // interval of the delta itself.
    const double rank_p = MannWhitneyP(xa, xb);
    const Blocked ba = BlocksFor(sa, src), bb = BlocksFor(sb, src);
    const std::vector<Interval> ci = BootstrapDeltas(
        ba, bb, quantiles, Resamples(o, xa.size() + xb.size()), o.alpha, source_seed * 7919);
    std::vector<double> pooled;
    for (size_t k = 0; k < idx.size(); ++k) {
      MetricComparison& m = lc.metrics[idx[k]];
      m.ci_low = m.moved_low = ci[k].low;
      m.ci_high = m.moved_high = ci[k].high;
      if (quantiles[k] < 0) {
        m.p_value = rank_p;
        continue;
      }
      if (pooled.empty()) {
        pooled.reserve(xa.size() + xb.size());
        pooled.insert(pooled.end(), xa.begin(), xa.end());
        pooled.insert(pooled.end(), xb.begin(), xb.end());
        std::sort(pooled.begin(), pooled.end());
      }
      const Interval share = BootstrapTailShare(
          ba, bb, common::PercentileSorted(pooled, quantiles[k]),
          std::max(o.bootstrap_resamples, 200), o.alpha, source_seed * 7919 + 1 + k);
      m.p_value = std::max(common::QuantileTestP(xa, xb, quantiles[k]), share.p);
      m.moved_low = share.low;
      m.moved_high = share.high;
    }
  }
  for (size_t i = 0; i < std::size(kMetrics); ++i) {
    MetricComparison& m = lc.metrics[i];
    if (kMetrics[i].source == Source::kSuccess) {
      m.ci_low = m.ci_high = kNaN;
      CompareSuccess(a, b, o, &m);
      m.moved_low = m.ci_low;
      m.moved_high = m.ci_high;
    }
    if (std::isnan(m.p_value)) {
      m.ci_low = m.ci_high = kNaN;
      m.verdict = Verdict::kNoData;
      if (kMetrics[i].source == Source::kSuccess) {
        m.why_no_data = absl::StrCat("attempted requests: baseline ", a.attempted(), ", candidate ",
                                     b.attempted(), ", ", o.min_samples, " needed on each side");
      }
      continue;
    }
    Decide(kMetrics[i], o, &m);
  }
  return lc;
}

// How far `m` moved in the metric's bad direction, in the rule's unit (negative: improved).
double BadAmount(const MetricDef& def, const FailRule& rule, const MetricComparison& m) {
  const double moved = rule.percent ? m.delta_pct : m.delta;
  return def.higher_is_better ? -moved : moved;
}

std::string NumOrEmpty(double v) { return std::isnan(v) ? "" : absl::StrFormat("%.10g", v); }

std::string PValueText(double p) {
  if (std::isnan(p)) return "-";
  if (p < 0.0001) return "<0.0001";
  return absl::StrFormat("%.4f", p);
}

// The percentile a metric is ("ttfa_p95" -> 0.95), or 0 for a mean, a rate or a throughput.
double PercentileOfMetric(absl::string_view metric) {
  const size_t at = metric.rfind("_p");
  int p = 0;
  if (at == absl::string_view::npos || !absl::SimpleAtoi(metric.substr(at + 2), &p) || p <= 0 ||
      p >= 100) {
    return 0;
  }
  return p / 100.0;
}

}  // namespace

const std::vector<std::string>& CompareMetricNames() {
  static const std::vector<std::string>* names = [] {
    auto* v = new std::vector<std::string>;
    for (const MetricDef& m : kMetrics) v->push_back(m.name);
    return v;
  }();
  return *names;
}

absl::string_view VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kNoData:
      return "n/a";
    case Verdict::kNoChange:
      return "same";
    case Verdict::kImproved:
      return "better";
    case Verdict::kRegressed:
      return "WORSE";
  }
  return "?";
}

absl::StatusOr<FailRule> ParseFailRule(absl::string_view text) {
  const std::string usage =
      absl::StrCat("--fail-on ", text,
                   ": expected METRIC=[+|-]N% (or an absolute N, ms for latency/TTFA) "
                   "with METRIC one of ",
                   absl::StrJoin(CompareMetricNames(), ", "));
  const size_t eq = text.find('=');
  if (eq == absl::string_view::npos) return absl::InvalidArgumentError(usage);
  FailRule rule;
  rule.text = std::string(text);
  rule.metric = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text.substr(0, eq)));
  if (rule.metric == "success") rule.metric = "success_rate";
  const MetricDef* def = FindMetric(rule.metric);
  if (def == nullptr) return absl::InvalidArgumentError(usage);
  absl::string_view value = absl::StripAsciiWhitespace(text.substr(eq + 1));
  int sign = 0;
  if (absl::ConsumePrefix(&value, "+")) {
    sign = 1;
  } else if (absl::ConsumePrefix(&value, "-")) {
    sign = -1;
  }
  const std::string magnitude(value);  // for the message below
  double scale = 1;
  if (absl::ConsumeSuffix(&value, "%")) {
    rule.percent = true;
  } else {
    rule.percent = false;
    const absl::string_view unit = def->unit;
    // Same units as the plan's SLOs: "50ms" or "0.05s" for latencies.
    if (unit == "ms" && !absl::ConsumeSuffix(&value, "ms") && absl::ConsumeSuffix(&value, "s")) {
      scale = 1000;
    } else if (unit == "pp") {
      absl::ConsumeSuffix(&value, "pp");
    }
  }
  double threshold = 0;
  if (!absl::SimpleAtod(value, &threshold) || !std::isfinite(threshold) || threshold < 0) {
    return absl::InvalidArgumentError(usage);
  }
  threshold *= scale;
  const int bad = def->higher_is_better ? -1 : 1;
  if (sign != 0 && sign != bad) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--fail-on ", text, ": ", rule.metric, " regresses when it ", bad < 0 ? "falls" : "rises",
        "; write ", rule.metric, "=", bad < 0 ? "-" : "+", magnitude));
  }
  rule.threshold = threshold;
  return rule;
}

absl::StatusOr<ComparisonResult> CompareSessions(const std::vector<LoadedSession>& sessions,
                                                 const CompareOptions& options) {
  if (sessions.size() < 2) {
    return absl::InvalidArgumentError("compare needs a baseline and at least one other session");
  }
  if (!(options.alpha > 0 && options.alpha < 1) || options.bootstrap_resamples < 10) {
    return absl::InvalidArgumentError("compare: alpha must be in (0, 1), resamples >= 10");
  }
  ComparisonResult result;
  const LoadedSession& base = sessions[0];
  for (size_t c = 1; c < sessions.size(); ++c) {
    const LoadedSession& cand = sessions[c];
    CandidateComparison cc;
    cc.baseline = SessionName(base);
    cc.candidate = SessionName(cand);
    for (const LoadedSession* s : {&base, &cand}) {
      if (!s->has_requests) {
        cc.notes.push_back(absl::StrCat(SessionName(*s),
                                        " has no per-request data (requests.csv): only success "
                                        "rate can be judged"));
      }
      for (const std::string& n : s->notes) cc.notes.push_back(n);
    }
    result.allow_unevaluated = options.allow_unevaluated;
    std::vector<bool> cand_used(static_cast<size_t>(cand.session.levels_size()), false);
    for (int i = 0; i < base.session.levels_size(); ++i) {
      const v1::LevelStats& a = base.session.levels(i);
      const LevelKey key = KeyOf(a);
      int match = -1;
      for (int j = 0; j < cand.session.levels_size() && match < 0; ++j) {
        if (!cand_used[static_cast<size_t>(j)] && key.Matches(KeyOf(cand.session.levels(j)))) {
          match = j;
        }
      }
      if (match < 0) {
        cc.unmatched.push_back(absl::StrCat(LevelLabel(a), " (only in ", cc.baseline, ")"));
        continue;
      }
      cand_used[static_cast<size_t>(match)] = true;
      const uint64_t seed = options.seed + 1000003ULL * c + 7919ULL * static_cast<uint64_t>(i);
      cc.levels.push_back(CompareLevel(a, RecordsOf(base, i), cand.session.levels(match),
                                       RecordsOf(cand, match), options, seed));
    }
    for (int j = 0; j < cand.session.levels_size(); ++j) {
      if (!cand_used[static_cast<size_t>(j)]) {
        cc.unmatched.push_back(
            absl::StrCat(LevelLabel(cand.session.levels(j)), " (only in ", cc.candidate, ")"));
      }
    }
    bool any_verdict = false;
    for (const LevelComparison& l : cc.levels) {
      for (const MetricComparison& m : l.metrics) {
        result.any_regression |= m.verdict == Verdict::kRegressed;
        any_verdict |= m.verdict != Verdict::kNoData;
      }
    }
    if (cc.levels.empty()) {
      result.not_evaluated.push_back(absl::StrCat(cc.candidate, ": no level in common with ",
                                                  cc.baseline, " (", cc.unmatched.size(),
                                                  " levels unmatched)"));
    } else if (!any_verdict) {
      result.not_evaluated.push_back(
          absl::StrCat(cc.candidate, ": every metric of every level is n/a"));
    }
    result.candidates.push_back(std::move(cc));
  }
  for (const FailRule& rule : options.fail_on) {
    RuleResult rr;
    rr.rule = rule;
    const MetricDef* def = FindMetric(rule.metric);
    if (def == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown metric in rule ", rule.text));
    }
    for (const CandidateComparison& cc : result.candidates) {
      if (cc.levels.empty()) {
        rr.not_evaluated.push_back(
            absl::StrCat(cc.candidate, ": no level in common with ", cc.baseline));
      }
      for (const LevelComparison& l : cc.levels) {
        for (const MetricComparison& m : l.metrics) {
          if (m.metric != rule.metric) continue;
          if (m.verdict == Verdict::kNoData) {
            rr.not_evaluated.push_back(absl::StrCat(
                cc.candidate, " ", l.label, ": ", m.metric, " ",
                std::isnan(m.delta_pct) ? "" : absl::StrFormat("%+.1f%% ", m.delta_pct), "is n/a (",
                m.why_no_data.empty() ? "too little data" : m.why_no_data, ")"));
            continue;
          }
          const double bad = BadAmount(*def, rule, m);
          const bool crossed = m.significant && !std::isnan(bad) && bad > rule.threshold;
          // A percentile that too few requests lie beyond is not resolved: "same" would only
          // mean "could not tell" (a p95 from 40 requests is the interpolation of its top two).
          // A significant crossing still counts; anything else is not evaluated.
          if (const double q = PercentileOfMetric(m.metric); !crossed && q > 0) {
            const int64_t need = common::SamplesToResolve(q);
            const size_t have = std::min(l.baseline_samples, l.candidate_samples);
            if (static_cast<int64_t>(have) < need) {
              rr.not_evaluated.push_back(
                  absl::StrCat(cc.candidate, " ", l.label, ": ", m.metric, " is not resolved (",
                               have, " requests on the smaller side; ", need,
                               " put ~10 beyond the percentile: raise iterations)"));
              continue;
            }
          }
          if (!crossed) continue;
          rr.crossed = true;
          rr.where.push_back(absl::StrFormat(
              "%s %s: %s %.4g -> %.4g (%+.4g, %+.2f%%, p %s)", cc.candidate, l.label, m.metric,
              m.baseline, m.candidate, m.delta, m.delta_pct, PValueText(m.p_value)));
        }
      }
    }
    result.any_rule_crossed |= rr.crossed;
    result.rules.push_back(std::move(rr));
  }
  return result;
}

bool ComparisonFailed(const ComparisonResult& result) {
  return result.rules.empty() ? result.any_regression : result.any_rule_crossed;
}

namespace {
size_t UnevaluatedCount(const ComparisonResult& result) {
  if (result.rules.empty()) return result.not_evaluated.empty() ? 0 : 1;
  size_t n = 0;
  for (const RuleResult& r : result.rules) n += !r.crossed && !r.not_evaluated.empty();
  return n;
}
}  // namespace

bool ComparisonUnevaluated(const ComparisonResult& result) {
  return !result.allow_unevaluated && UnevaluatedCount(result) > 0;
}

std::string CompareTable(const ComparisonResult& result) {
  std::string out;
  for (const CandidateComparison& cc : result.candidates) {
    absl::StrAppend(&out, "\n", cc.candidate, " vs baseline ", cc.baseline, "\n",
                    std::string(92, '='), "\n");
    for (const LevelComparison& l : cc.levels) {
      absl::StrAppend(&out,
                      absl::StrFormat("%s  (requests: baseline %d, candidate %d)\n", l.label,
                                      l.baseline_samples, l.candidate_samples),
                      absl::StrFormat("  %-13s %12s %12s %12s %9s %9s  %s\n", "Metric", "Baseline",
                                      "Candidate", "Delta", "Delta %", "p-value", "Verdict"));
      for (const MetricComparison& m : l.metrics) {
        absl::StrAppend(
            &out,
            absl::StrFormat("  %-13s %12.4f %12.4f %+12.4f %9s %9s  %s\n", m.metric, m.baseline,
                            m.candidate, m.delta,
                            std::isnan(m.delta_pct) ? "-" : absl::StrFormat("%+.1f%%", m.delta_pct),
                            PValueText(m.p_value), VerdictName(m.verdict)));
      }
    }
    for (const std::string& u : cc.unmatched) absl::StrAppend(&out, "unmatched level: ", u, "\n");
    for (const std::string& n : cc.notes) absl::StrAppend(&out, "note: ", n, "\n");
  }
  absl::StrAppend(&out,
                  "\nVerdicts: WORSE/better only when p < alpha (percentiles: exact quantile "
                  "test and time-block bootstrap; means: Mann-Whitney U; ASPS/RPS: windowed "
                  "throughput; success: two-proportion z) and the bootstrap interval of the "
                  "delta (of a percentile: of the share of requests beyond it) excludes 0, and "
                  "the change is practically large.\n");
  for (const RuleResult& r : result.rules) {
    if (!r.crossed && !r.not_evaluated.empty()) {
      // Never "ok": an n/a metric or a missing level is not evidence that nothing regressed.
      absl::StrAppend(&out, absl::StrFormat("rule %-22s NOT EVALUATED: %s\n", r.rule.text,
                                            r.not_evaluated.front()));
      for (size_t i = 1; i < r.not_evaluated.size(); ++i) {
        absl::StrAppend(&out, "    ", r.not_evaluated[i], "\n");
      }
      continue;
    }
    absl::StrAppend(&out,
                    absl::StrFormat("rule %-22s %s\n", r.rule.text, r.crossed ? "CROSSED" : "ok"));
    for (const std::string& w : r.where) absl::StrAppend(&out, "    ", w, "\n");
  }
  if (result.rules.empty()) {
    for (const std::string& n : result.not_evaluated) {
      absl::StrAppend(&out, "comparison NOT EVALUATED: ", n, "\n");
    }
  }
  const size_t unevaluated = UnevaluatedCount(result);
  if (ComparisonFailed(result)) {
    absl::StrAppend(&out, "Result: REGRESSION\n");
  } else if (ComparisonUnevaluated(result)) {
    absl::StrAppend(&out, "Result: NOT EVALUATED (",
                    result.rules.empty()
                        ? "the comparison"
                        : absl::StrCat(unevaluated, " of ", result.rules.size(), " rules"),
                    " could not be checked; --allow-unevaluated accepts that)\n");
  } else if (unevaluated > 0) {
    absl::StrAppend(&out, "Result: ok (", unevaluated,
                    " not evaluated, allowed by --allow-unevaluated)\n");
  } else {
    absl::StrAppend(&out, "Result: ok\n");
  }
  return out;
}

std::string CompareCsv(const ComparisonResult& result) {
  std::string out;
  common::CsvWriter csv(&out);
  csv.Row({"baseline", "candidate", "level", "series", "concurrency", "rate", "metric",
           "baseline_value", "candidate_value", "delta", "delta_pct", "p_value", "ci_low",
           "ci_high", "significant", "verdict", "baseline_requests", "candidate_requests",
           "why_no_data"});
  for (const CandidateComparison& cc : result.candidates) {
    for (const LevelComparison& l : cc.levels) {
      for (const MetricComparison& m : l.metrics) {
        csv.Field(cc.baseline)
            .Field(cc.candidate)
            .Field(l.label)
            .Field(l.series)
            .Field(l.concurrency)
            .Field(NumOrEmpty(l.rate))
            .Field(m.metric)
            .Field(NumOrEmpty(m.baseline))
            .Field(NumOrEmpty(m.candidate))
            .Field(NumOrEmpty(m.delta))
            .Field(NumOrEmpty(m.delta_pct))
            .Field(NumOrEmpty(m.p_value))
            .Field(NumOrEmpty(m.ci_low))
            .Field(NumOrEmpty(m.ci_high))
            .Field(m.significant ? 1 : 0)
            .Field(VerdictName(m.verdict))
            .Field(l.baseline_samples)
            .Field(l.candidate_samples)
            .Field(m.why_no_data)
            .EndRow();
      }
    }
  }
  return out;
}

absl::StatusOr<std::string> CompareJson(const ComparisonResult& result) {
  using common::JsonNumber;
  using common::JsonText;
  boost::json::object root;
  root["regression"] = ComparisonFailed(result);
  root["any_rule_crossed"] = result.any_rule_crossed;
  root["any_regression"] = result.any_regression;
  root["not_evaluated"] = ComparisonUnevaluated(result);
  boost::json::array gate_reasons;
  for (const std::string& n : result.not_evaluated) gate_reasons.push_back(JsonText(n));
  root["not_evaluated_reasons"] = std::move(gate_reasons);
  boost::json::array cands;
  for (const CandidateComparison& cc : result.candidates) {
    boost::json::object c;
    c["baseline"] = JsonText(cc.baseline);
    c["candidate"] = JsonText(cc.candidate);
    boost::json::array levels;
    for (const LevelComparison& l : cc.levels) {
      boost::json::object lv;
      lv["level"] = JsonText(l.label);
      lv["series"] = JsonText(l.series);
      lv["concurrency"] = l.concurrency;
      lv["rate"] = JsonNumber(l.rate);
      lv["baseline_requests"] = l.baseline_samples;
      lv["candidate_requests"] = l.candidate_samples;
      boost::json::object metrics;
      for (const MetricComparison& m : l.metrics) {
        boost::json::object mv;
        mv["baseline"] = JsonNumber(m.baseline);
        mv["candidate"] = JsonNumber(m.candidate);
        mv["delta"] = JsonNumber(m.delta);
        mv["delta_pct"] = JsonNumber(m.delta_pct);
        mv["p_value"] = JsonNumber(m.p_value);
        mv["ci_low"] = JsonNumber(m.ci_low);
        mv["ci_high"] = JsonNumber(m.ci_high);
        mv["significant"] = m.significant;
        mv["verdict"] = JsonText(VerdictName(m.verdict));
        if (!m.why_no_data.empty()) mv["why_no_data"] = JsonText(m.why_no_data);
        metrics[m.metric] = std::move(mv);
      }
      lv["metrics"] = std::move(metrics);
      levels.push_back(std::move(lv));
    }
    c["levels"] = std::move(levels);
    boost::json::array unmatched, notes;
    for (const std::string& u : cc.unmatched) unmatched.push_back(JsonText(u));
    for (const std::string& n : cc.notes) notes.push_back(JsonText(n));
    c["unmatched"] = std::move(unmatched);
    c["notes"] = std::move(notes);
    cands.push_back(std::move(c));
  }
  root["candidates"] = std::move(cands);
  boost::json::array rules;
  for (const RuleResult& r : result.rules) {
    boost::json::object rv;
    rv["rule"] = JsonText(r.rule.text);
    rv["metric"] = JsonText(r.rule.metric);
    rv["crossed"] = r.crossed;
    boost::json::array where;
    for (const std::string& w : r.where) where.push_back(JsonText(w));
    rv["where"] = std::move(where);
    rv["evaluated"] = r.not_evaluated.empty();
    boost::json::array reasons;
    for (const std::string& n : r.not_evaluated) reasons.push_back(JsonText(n));
    rv["not_evaluated"] = std::move(reasons);
    rules.push_back(std::move(rv));
  }
  root["rules"] = std::move(rules);
  return common::PrettyJson(root);
}

absl::Status WriteComparison(const std::string& dir, const ComparisonResult& result) {
  auto json = CompareJson(result);
  if (!json.ok()) return json.status();
  std::error_code ec;
  fs::create_directories(dir, ec);
  for (const auto& [name, content] :
       {std::pair<std::string, std::string>{"compare.csv", CompareCsv(result)},
        {"compare.json", *json}}) {
    if (absl::Status st = WriteAtomically(fs::path(dir) / name, content); !st.ok()) return st;
  }
  return absl::OkStatus();
}

}  // namespace ttsbench::coordinator
