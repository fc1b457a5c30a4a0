#include "common/metrics.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "common/records.h"
#include "common/stats.h"

namespace ttsbench::common {
namespace {

constexpr double kNsPerS = 1e9;
constexpr double kNsPerMs = 1e6;

void Fill(std::vector<double>& values, v1::Distribution* out) {
  const Summary s = Summarize(values);
  out->set_mean(s.mean);
  out->set_p50(s.p50);
  out->set_p95(s.p95);
  out->set_p99(s.p99);
  out->set_max(s.max);
  out->set_count(static_cast<uint32_t>(s.count));
}

}  // namespace

v1::LevelStats ComputeLevelStats(int concurrency, std::span<const v1::RequestRecord> records,
                                 const LevelOptions& options) {
  v1::LevelStats st;
  st.set_concurrency(concurrency);
  int64_t min_start = std::numeric_limits<int64_t>::max();
  int64_t max_end = std::numeric_limits<int64_t>::min();
  int64_t max_start = std::numeric_limits<int64_t>::min();
  uint32_t attempted = 0, successful = 0, warmup = 0, new_connections = 0;
  uint64_t chars = 0;
  double audio_s = 0;
  uint32_t goodput = 0, streamed_ok = 0, continuity_ok = 0;
  std::vector<double> latency_ms, ttfa_ms, rtf, connect_ms, lag_ms, from_intended_ms, underrun_ms;
  latency_ms.reserve(records.size());
  ttfa_ms.reserve(records.size());
  rtf.reserve(records.size());
  for (const v1::RequestRecord& r : records) {
    if (r.warmup()) {
      ++warmup;
      continue;
    }
    ++attempted;
    min_start = std::min(min_start, r.start_ns());
    max_start = std::max(max_start, r.start_ns());
    max_end = std::max(max_end, r.end_ns());
    if (r.intended_ns() > 0 && r.start_ns() > 0) {
      lag_ms.push_back(static_cast<double>(r.start_ns() - r.intended_ns()) / kNsPerMs);
    }
    if (r.connect_ns() > 0) {
      ++new_connections;
      connect_ms.push_back(static_cast<double>(r.connect_ns()) / kNsPerMs);
    }
    if (!Succeeded(r)) {
      (*st.mutable_errors())[std::string(ErrorKindName(r.error()))]++;
      continue;
    }
    ++successful;
    chars += static_cast<uint64_t>(r.chars());
    audio_s += r.audio_s();
    const double latency_ns = static_cast<double>(r.end_ns() - r.start_ns());
    latency_ms.push_back(latency_ns / kNsPerMs);
    ttfa_ms.push_back(static_cast<double>(r.first_audio_ns() - r.start_ns()) / kNsPerMs);
    if (r.audio_s() > 0) rtf.push_back(latency_ns / kNsPerS / r.audio_s());
    if (r.intended_ns() > 0) {
      from_intended_ms.push_back(static_cast<double>(r.end_ns() - r.intended_ns()) / kNsPerMs);
    }
    if (RequestMeetsSlos(options.slos, r)) ++goodput;
    if (r.streamed() && r.chunks() > 0) {
      ++streamed_ok;
      underrun_ms.push_back(r.underrun_ms());
      if (r.worst_stall_ms() <= options.stall_threshold_ms) ++continuity_ok;
    }
  }
  st.set_attempted(attempted);
  st.set_successful(successful);
  st.set_failed(attempted - successful);
  st.set_warmup_excluded(warmup);
  st.set_characters(chars);
  st.set_audio_seconds(audio_s);
  st.set_new_connections(new_connections);
  const double t_wall = attempted > 0 ? static_cast<double>(max_end - min_start) / kNsPerS : 0.0;
  st.set_t_wall_s(t_wall);
  if (t_wall > 0) {
    st.set_asps(audio_s / t_wall);
    st.set_rps(static_cast<double>(successful) / t_wall);
    st.set_attempted_rps(static_cast<double>(attempted) / t_wall);
    st.set_cps(static_cast<double>(chars) / t_wall);
    st.set_goodput_rps(static_cast<double>(goodput) / t_wall);
    // Sends per second over the span of sends (not T_wall, whose tail is the last latency).
    if (attempted > 1 && max_start > min_start) {
      st.set_achieved_rate(static_cast<double>(attempted - 1) /
                           (static_cast<double>(max_start - min_start) / kNsPerS));
    }
  }
  st.set_continuity_ok_pct(streamed_ok > 0 ? 100.0 * continuity_ok / streamed_ok : 0.0);
  st.set_success_rate_pct(attempted > 0 ? 100.0 * static_cast<double>(successful) /
                                              static_cast<double>(attempted)
                                        : 0.0);
  Fill(latency_ms, st.mutable_latency_ms());
  Fill(ttfa_ms, st.mutable_ttfa_ms());
  Fill(rtf, st.mutable_rtf());
  st.set_rtf_median(st.rtf().p50());
  Fill(connect_ms, st.mutable_connect_ms());
  Fill(lag_ms, st.mutable_sched_lag_ms());
  Fill(from_intended_ms, st.mutable_latency_from_intended_ms());
  Fill(underrun_ms, st.mutable_underrun_ms());
  if (options.gaps_us != nullptr && options.gaps_us->count() > 0) {
    const LogHistogram& g = *options.gaps_us;
    v1::Distribution* d = st.mutable_gap_ms();
    d->set_mean(g.Mean() / 1e3);
    d->set_p50(g.Quantile(0.50) / 1e3);
    d->set_p95(g.Quantile(0.95) / 1e3);
    d->set_p99(g.Quantile(0.99) / 1e3);
    d->set_max(static_cast<double>(g.Max()) / 1e3);
    d->set_count(static_cast<uint32_t>(g.count()));
  }
  return st;
}

}  // namespace ttsbench::common
