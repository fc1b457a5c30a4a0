#include "common/metrics.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/audio_analysis.h"
#include "common/records.h"

namespace ttsbench::common {
namespace {

constexpr double kNsPerS = 1e9;
constexpr double kNsPerMs = 1e6;

// Order statistics by selection (O(n) each) instead of a full sort: the same values as
// PercentileSorted on the sorted data (numpy's linear method), in any order of `v`.
class Ranks {
 public:
  explicit Ranks(std::vector<double>& v) : v_(v) {}

  // The k-th smallest; calls come with non-decreasing k.
  double Kth(size_t k) {
    if (k != last_) {
      std::nth_element(v_.begin() + static_cast<std::ptrdiff_t>(from_),
                       v_.begin() + static_cast<std::ptrdiff_t>(k), v_.end());
      last_ = k;
      from_ = k + 1;  // everything before is now <= everything after
    }
    return v_[k];
  }

  double Percentile(double p, double max) {
    const size_t n = v_.size();
    if (n == 1) return v_[0];
    const double h = static_cast<double>(n - 1) * std::clamp(p, 0.0, 1.0);
    const size_t lo = static_cast<size_t>(std::floor(h));
    if (lo + 1 >= n) return max;
    const double a = Kth(lo);
    // The next rank is the smallest of what nth_element left above `lo`.
    const double b = *std::min_element(v_.begin() + static_cast<std::ptrdiff_t>(lo) + 1, v_.end());
    return a + (h - static_cast<double>(lo)) * (b - a);
  }

 private:
  std::vector<double>& v_;
  size_t from_ = 0;
  size_t last_ = std::numeric_limits<size_t>::max();
};

// Reorders `values`.
void Fill(std::vector<double>& values, v1::Distribution* out) {
  if (values.empty()) {
    out->set_count(0);
    return;
  }
  double sum = 0, max = values[0];
  for (double v : values) {
    sum += v;
    max = std::max(max, v);
  }
  Ranks ranks(values);
  out->set_mean(sum / static_cast<double>(values.size()));
  out->set_p50(ranks.Percentile(0.50, max));
  out->set_p95(ranks.Percentile(0.95, max));
  out->set_p99(ranks.Percentile(0.99, max));
  out->set_max(max);
  out->set_count(static_cast<uint32_t>(values.size()));
}

using Chunk = RecordStore::Chunk;

// Cancelled by the tool itself (level end, lease stop): not a measurement of the server.
bool Cancelled(const Chunk& c, size_t i) { return c.error[i] == v1::ERROR_CANCELLED; }

// TTFA of a success: first audio - start, or the latency when no audio was stamped before the
// end (the audio was in hand at the end at the latest, as for a non-streamed answer). Never
// negative, never past the latency.
double TtfaNs(const Chunk& c, size_t i) {
  const int64_t start = c.start_ns[i], end = c.end_ns[i], first = c.first_audio_ns[i];
  const bool stamped = first != 0 && first >= start && first <= end;
  return static_cast<double>((stamped ? first : end) - start);
}

// Refills `out` with value(c, i) of every record for which keep(c, i) holds.
template <typename Keep, typename Value>
void Gather(const RecordStore& records, std::vector<double>& out, Keep keep, Value value) {
  out.clear();
  records.ForEach([&](const Chunk& c, size_t i) {
    if (keep(c, i)) out.push_back(value(c, i));
  });
}

// Paced text and barge-in (issue 13, DESIGN.md "Paced text"), over the measured successful
// requests that have them (barge-in: interrupted ones, failed too when the failure is the
// server's talking past the limit).
void FillPacedStats(const RecordStore& records, v1::LevelStats& st) {
  if (records.paced().empty()) return;
  std::vector<double> ftts, ltla, late, tts, after;
  uint32_t interrupted = 0;
  for (const auto& [index, p] : records.paced()) {
    const Chunk& c = records.chunk(index >> RecordStore::kChunkBits);
    const size_t i = index & (RecordStore::kChunkRecords - 1);
    if (c.warmup(i) || Cancelled(c, i)) continue;
    const bool ok = c.succeeded(i);
    if (p.interrupt_ns != 0 && (ok || c.error[i] == v1::ERROR_AUDIO_AFTER_CANCEL)) {
      ++interrupted;
      tts.push_back(static_cast<double>(std::max<int64_t>(0, p.last_audio_ns - p.interrupt_ns)) /
                    kNsPerMs);
      after.push_back(static_cast<double>(p.bytes_after_interrupt));
    }
    if (!ok) continue;
    if (p.first_text_ns != 0 && c.first_audio_ns[i] != 0) {
      ftts.push_back(static_cast<double>(c.first_audio_ns[i] - p.first_text_ns) / kNsPerMs);
    }
    if (p.end_of_input_ns != 0 && p.last_audio_ns != 0 && p.interrupt_ns == 0) {
      ltla.push_back(static_cast<double>(p.last_audio_ns - p.end_of_input_ns) / kNsPerMs);
    }
    if (p.first_text_ns != 0) late.push_back(static_cast<double>(p.late_max_ns) / kNsPerMs);
  }
  Fill(ftts, st.mutable_first_token_to_speech_ms());
  Fill(ltla, st.mutable_last_token_to_last_audio_ms());
  Fill(late, st.mutable_pacing_late_ms());
  Fill(tts, st.mutable_time_to_silence_ms());
  Fill(after, st.mutable_bytes_after_interrupt());
  st.set_interrupted(interrupted);
}

// Conversations (issue 13, DESIGN.md "Conversations"), over the measured turns (cancelled ones
// aside): distinct conversations, turns, the connection set-ups (a conversation's first and its
// reconnects, failed ones too) and the conversations with a failed turn.
void FillConversationStats(const RecordStore& records, v1::LevelStats& st) {
  std::vector<uint64_t> ids, failed;
  std::vector<double> setup;
  uint32_t turns = 0, reconnects = 0;
  for (const auto& [index, p] : records.paced()) {
    if (p.conversation_id == 0) continue;
    const Chunk& c = records.chunk(index >> RecordStore::kChunkBits);
    const size_t i = index & (RecordStore::kChunkRecords - 1);
    if (c.warmup(i) || Cancelled(c, i)) continue;
    ++turns;
    ids.push_back(p.conversation_id);
    if (!c.succeeded(i)) failed.push_back(p.conversation_id);
    if (p.conversation_setup_ns > 0) {
      setup.push_back(static_cast<double>(p.conversation_setup_ns) / kNsPerMs);
      if (p.reconnect) ++reconnects;
    }
  }
  if (turns == 0) return;
  auto distinct = [](std::vector<uint64_t>& v) {
    std::sort(v.begin(), v.end());
    return static_cast<uint32_t>(std::unique(v.begin(), v.end()) - v.begin());
  };
  st.set_conversations(distinct(ids));
  st.set_conversation_turns(turns);
  Fill(setup, st.mutable_conversation_setup_ms());
  st.set_reconnects(reconnects);
  st.set_conversations_failed(distinct(failed));
}

}  // namespace

v1::LevelStats ComputeLevelStats(int concurrency, std::span<const v1::RequestRecord> records,
                                 const LevelOptions& options) {
  RecordStore store;
  store.Reserve(records.size());
  for (const v1::RequestRecord& r : records) store.Append(r, 0);
  return ComputeLevelStats(concurrency, store, options);
}

v1::LevelStats ComputeLevelStats(int concurrency, const RecordStore& records,
                                 const LevelOptions& options) {
  v1::LevelStats st;
  st.set_concurrency(concurrency);
  int64_t min_start = std::numeric_limits<int64_t>::max();
  int64_t max_end = std::numeric_limits<int64_t>::min();
  int64_t max_start = std::numeric_limits<int64_t>::min();
  uint32_t attempted = 0, successful = 0, warmup = 0, cancelled = 0, new_connections = 0;
  uint64_t chars = 0;
  double audio_s = 0;
  uint32_t goodput = 0, streamed_ok = 0, continuity_ok = 0;
  std::array<uint32_t, 256> errors{};
  // Per kind, the earliest-started failed request: the one whose detail the summary shows.
  std::array<size_t, 256> first_index{};
  std::array<int64_t, 256> first_start;
  first_start.fill(std::numeric_limits<int64_t>::max());
  size_t index = 0;
  const RequestSloBounds bounds = RequestBoundsOf(options.slos);
  // One pass for the counts and sums; then one gather per distribution into a single buffer,
  // so memory beyond the records is one double per record, whatever the number of metrics.
  records.ForEach([&](const Chunk& c, size_t i) {
    const size_t at = index++;
    if (c.warmup(i)) {
      ++warmup;
      return;
    }
    if (Cancelled(c, i)) {
      ++cancelled;
      return;
    }
    ++attempted;
    const int64_t start = c.start_ns[i], end = c.end_ns[i];
    min_start = std::min(min_start, start);
    max_start = std::max(max_start, start);
    max_end = std::max(max_end, end);
    new_connections += c.connect_ns[i] > 0;
    if (!c.succeeded(i)) {
      ++errors[c.error[i]];
      if (start < first_start[c.error[i]]) {
        first_start[c.error[i]] = start;
        first_index[c.error[i]] = at;
      }
      return;
    }
    ++successful;
    chars += static_cast<uint64_t>(c.chars[i]);
    audio_s += c.audio_s[i];
    const double latency_ms = static_cast<double>(end - start) / kNsPerMs;
    const double ttfa_ms = TtfaNs(c, i) / kNsPerMs;
    goodput += RequestMeetsSloBounds(bounds, latency_ms, ttfa_ms, c.audio_s[i]);
    if (c.streamed(i) && c.chunks[i] > 0) {
      ++streamed_ok;
      continuity_ok += c.worst_stall_ms[i] <= options.stall_threshold_ms;
    }
  });
  std::vector<size_t> kinds;
  for (size_t kind = 0; kind < errors.size(); ++kind) {
    if (errors[kind] == 0) continue;
    (*st.mutable_errors())[std::string(ErrorKindName(static_cast<v1::ErrorKind>(kind)))] +=
        errors[kind];
    kinds.push_back(kind);
  }
  std::stable_sort(kinds.begin(), kinds.end(),
                   [&](size_t a, size_t b) { return errors[a] > errors[b]; });
  for (const size_t kind : kinds) {
    v1::ErrorSummary* e = st.add_error_summary();
    e->set_kind(std::string(ErrorKindName(static_cast<v1::ErrorKind>(kind))));
    e->set_count(errors[kind]);
    const size_t at = first_index[kind];
    e->set_first_detail(std::string(records.detail(at)));
    e->set_first_http_status(records[at].http_status);
  }
  st.set_attempted(attempted);
  st.set_successful(successful);
  st.set_failed(attempted - successful);
  st.set_warmup_excluded(warmup);
  st.set_cancelled(cancelled);
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

  std::vector<double> v;
  v.reserve(attempted);
  auto ok = [](const Chunk& c, size_t i) { return !c.warmup(i) && c.succeeded(i); };
  auto latency_ns = [](const Chunk& c, size_t i) {
    return static_cast<double>(c.end_ns[i] - c.start_ns[i]);
  };
  Gather(records, v, ok, [&](const Chunk& c, size_t i) { return latency_ns(c, i) / kNsPerMs; });
  Fill(v, st.mutable_latency_ms());
  Gather(records, v, ok, [](const Chunk& c, size_t i) { return TtfaNs(c, i) / kNsPerMs; });
  Fill(v, st.mutable_ttfa_ms());
  Gather(
      records, v, [&](const Chunk& c, size_t i) { return ok(c, i) && c.audio_s[i] > 0; },
      [&](const Chunk& c, size_t i) { return latency_ns(c, i) / kNsPerS / c.audio_s[i]; });
  Fill(v, st.mutable_rtf());
  st.set_rtf_median(st.rtf().p50());
  Gather(
      records, v,
      [](const Chunk& c, size_t i) {
        return !c.warmup(i) && !Cancelled(c, i) && c.connect_ns[i] > 0;
      },
      [](const Chunk& c, size_t i) { return static_cast<double>(c.connect_ns[i]) / kNsPerMs; });
  Fill(v, st.mutable_connect_ms());
  Gather(
      records, v,
      [](const Chunk& c, size_t i) {
        return !c.warmup(i) && !Cancelled(c, i) && c.intended_ns[i] > 0 && c.start_ns[i] > 0;
      },
      [](const Chunk& c, size_t i) {
        // The generator's lateness: when it decided to send, i.e. the first byte written less
        // any connection set-up made for this request (set-up is the server's and network's).
        const int64_t decided = c.start_ns[i] - c.connect_ns[i];
        return static_cast<double>(std::max<int64_t>(0, decided - c.intended_ns[i])) / kNsPerMs;
      });
  Fill(v, st.mutable_sched_lag_ms());
  Gather(
      records, v, [&](const Chunk& c, size_t i) { return ok(c, i) && c.intended_ns[i] > 0; },
      [](const Chunk& c, size_t i) {
        return static_cast<double>(c.end_ns[i] - c.intended_ns[i]) / kNsPerMs;
      });
  Fill(v, st.mutable_latency_from_intended_ms());
  Gather(
      records, v,
      [&](const Chunk& c, size_t i) { return ok(c, i) && c.streamed(i) && c.chunks[i] > 0; },
      [](const Chunk& c, size_t i) { return c.underrun_ms[i]; });
  Fill(v, st.mutable_underrun_ms());
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
  AddAudioCheckStats(records, &st);  // audio_checks (issue 14); nothing when off
  FillPacedStats(records, st);
  FillConversationStats(records, st);
  return st;
}

}  // namespace ttsbench::common
