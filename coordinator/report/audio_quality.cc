#include "coordinator/report/audio_quality.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/csv.h"
#include "common/record_store.h"
#include "common/stats.h"
#include "coordinator/report/html_report.h"

namespace ttsbench::coordinator {
namespace {

constexpr double kMadToSigma = 1.4826;  // MAD of a normal sample = 0.6745 sigma
constexpr double kScaleFloorOfMedian = 0.01;
constexpr double kFloorDb = -100;
constexpr double kFlatSdDb = 0.5;
constexpr double kFlatMeanToleranceDb = 3;
constexpr size_t kMinEnvelopeWindows = 3;

double Or(double v, double fallback) { return v > 0 ? v : fallback; }

double MedianOf(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return common::PercentileSorted(v, 0.5);
}

void FillDistribution(std::vector<double> values, v1::Distribution* out) {
  const common::Summary s = common::Summarize(values);
  out->set_mean(s.mean);
  out->set_p50(s.p50);
  out->set_p95(s.p95);
  out->set_p99(s.p99);
  out->set_max(s.max);
  out->set_count(static_cast<uint32_t>(s.count));
}

double MsPerChar(const AnalysedAnswer& a) {
  return a.analysis->decoded_s() * 1000 / static_cast<double>(a.chars);
}

std::string LevelName(const AudioQualityLevel& l) {
  return l.rate > 0 ? absl::StrCat("rate ", absl::StrFormat("%g", l.rate))
                    : absl::StrCat("concurrency ", l.concurrency);
}

double Load(const AudioQualityLevel& l) {
  return l.rate > 0 ? l.rate : static_cast<double>(l.concurrency);
}

// "truncated 8, stutter 2": the non-zero counts, in a fixed order.
std::string Counts(const std::vector<std::pair<const char*, uint32_t>>& counts) {
  std::vector<std::string> parts;
  for (const auto& [name, n] : counts) {
    if (n > 0) parts.push_back(absl::StrCat(name, " ", n));
  }
  return absl::StrJoin(parts, ", ");
}

using ReferenceKey = std::pair<std::string, int32_t>;  // series, text_index
using References = std::map<ReferenceKey, const AnalysedAnswer*>;

// Whether an answer's duration is unlike the lowest level's. Texts differ in ms per character
// (a short one with a long pause is an outlier among longer ones on any engine), so an answer
// whose text has a reference is judged by its duration against that reference; only a text the
// lowest level never said is judged by its ms/char robust z against the lowest level's mix.
// At the lowest level itself duration is the baseline: never flagged.
bool DurationOff(const AudioQualityLevel& level, const AnalysedAnswer& a, bool is_lowest,
                 const RobustScale& lowest, const References& references,
                 const v1::AudioQuality& b) {
  if (is_lowest) return false;
  if (const auto it = references.find({level.series, a.text_index}); it != references.end()) {
    const double ref_s = it->second->analysis->decoded_s();
    if (ref_s <= 0) return false;
    const double ratio = a.analysis->decoded_s() / ref_s;
    return ratio < b.min_duration_ratio() || ratio > b.max_duration_ratio();
  }
  return a.chars > 0 && std::abs(RobustZ(MsPerChar(a), lowest)) > b.outlier_z();
}

// Integrity of one level against its series' lowest level (`lowest`: its ms-per-char scale;
// `references`: each text's answer there).
v1::AudioIntegrity Integrity(const AudioQualityLevel& level, bool is_lowest,
                             const RobustScale& lowest, const References& references,
                             const v1::AudioQuality& b) {
  v1::AudioIntegrity out;
  std::vector<double> per_char;
  for (const AnalysedAnswer& a : level.answers) {
    if (a.chars > 0) per_char.push_back(MsPerChar(a));
  }
  const RobustScale own = RobustScaleOf(per_char);
  for (const AnalysedAnswer& a : level.answers) {
    const v1::AudioAnalysis& x = *a.analysis;
    bool flagged = false;
    auto count = [&](bool hit, uint32_t n) {
      flagged |= hit;
      return n + (hit ? 1 : 0);
    };
    out.set_analysed(out.analysed() + 1);
    out.set_leading_silence(
        count(x.leading_silence_ms() > b.max_edge_silence_ms(), out.leading_silence()));
    out.set_trailing_silence(
        count(x.trailing_silence_ms() > b.max_edge_silence_ms(), out.trailing_silence()));
    out.set_stutters(count(x.internal_silences() > 0, out.stutters()));
    out.set_clipped(count(x.clipped_fraction() > b.max_clipped_fraction(), out.clipped()));
    out.set_clipped_fraction_max(std::max(out.clipped_fraction_max(), x.clipped_fraction()));
    out.set_rate_mismatch(count(x.declared_sample_rate() > 0 && x.sample_rate() > 0 &&
                                    x.declared_sample_rate() != x.sample_rate(),
                                out.rate_mismatch()));
    out.set_channel_mismatch(count(
        x.declared_channels() > 0 && x.channels() > 0 && x.declared_channels() != x.channels(),
        out.channel_mismatch()));
    out.set_truncated(count(x.truncated(), out.truncated()));
    if (a.chars > 0 && std::abs(RobustZ(MsPerChar(a), own)) > b.outlier_z()) {
      out.set_outliers_own(out.outliers_own() + 1);
    }
    out.set_outliers_lowest(
        count(DurationOff(level, a, is_lowest, lowest, references, b), out.outliers_lowest()));
    out.set_flagged(out.flagged() + (flagged ? 1 : 0));
  }
  FillDistribution(per_char, out.mutable_ms_per_char());
  if (!per_char.empty() && lowest.median > 0) {
    out.set_median_shift_z(RobustZ(own.median, lowest));
    out.set_median_ratio(own.median / lowest.median);
  }
  std::vector<std::string> problems;
  if (out.analysed() > 0) {
    out.set_flagged_pct(100.0 * out.flagged() / out.analysed());
    if (out.flagged_pct() > b.max_flagged_pct()) {
      problems.push_back(absl::StrFormat("%.0f%% of %d answers flagged (%s)", out.flagged_pct(),
                                         out.analysed(),
                                         Counts({{"leading silence", out.leading_silence()},
                                                 {"trailing silence", out.trailing_silence()},
                                                 {"stutter", out.stutters()},
                                                 {"clipped", out.clipped()},
                                                 {"sample rate", out.rate_mismatch()},
                                                 {"channels", out.channel_mismatch()},
                                                 {"truncated", out.truncated()},
                                                 {"duration outlier", out.outliers_lowest()}})));
    }
    // The median of a mix of texts moves with the mix (fewer short texts, a higher median):
    // only a level that shares no text with the lowest is judged by it; otherwise each
    // answer's ratio to its own text's reference (above, and consistency) judges duration.
    const bool shares_a_text =
        std::any_of(level.answers.begin(), level.answers.end(), [&](const AnalysedAnswer& a) {
          return references.contains({level.series, a.text_index});
        });
    if (!is_lowest && !shares_a_text && out.median_ratio() > 0 &&
        (out.median_ratio() < b.min_duration_ratio() ||
         out.median_ratio() > b.max_duration_ratio())) {
      problems.push_back(
          absl::StrFormat("median ms/char %.2fx the lowest level's", out.median_ratio()));
    }
  }
  out.set_ok(problems.empty());
  out.set_problems(absl::StrJoin(problems, "; "));
  return out;
}

std::span<const float> Envelope(const v1::AudioAnalysis& a) {
  return {a.envelope_db().data(), static_cast<size_t>(a.envelope_db().size())};
}

v1::AudioConsistency Consistency(const AudioQualityLevel& level, bool is_lowest,
                                 const References& references, const v1::AudioQuality& b) {
  v1::AudioConsistency out;
  std::vector<double> ratios, corrs;
  uint32_t inconsistent = 0;
  for (const AnalysedAnswer& a : level.answers) {
    const auto it = references.find({level.series, a.text_index});
    if (it == references.end() || it->second == &a) continue;
    const v1::AudioAnalysis& ref = *it->second->analysis;
    if (ref.decoded_s() <= 0) continue;
    const double ratio = a.analysis->decoded_s() / ref.decoded_s();
    // The lowest level's repeats show the server's own variation; their durations are the
    // baseline (reported, not judged), their envelopes still are.
    bool bad = !is_lowest && (ratio < b.min_duration_ratio() || ratio > b.max_duration_ratio());
    ratios.push_back(ratio);
    const std::optional<double> corr =
        EnvelopeCorrelation(Envelope(ref), ref.envelope_window_ms(), Envelope(*a.analysis),
                            a.analysis->envelope_window_ms());
    if (corr) {
      corrs.push_back(*corr);
      bad |= *corr < b.min_envelope_correlation();
    }
    inconsistent += bad ? 1 : 0;
  }
  out.set_compared(static_cast<uint32_t>(ratios.size()));
  out.set_envelope_compared(static_cast<uint32_t>(corrs.size()));
  out.set_inconsistent(inconsistent);
  if (!ratios.empty()) {
    out.set_duration_ratio_median(MedianOf(ratios));
    out.set_duration_ratio_min(*std::min_element(ratios.begin(), ratios.end()));
    out.set_duration_ratio_max(*std::max_element(ratios.begin(), ratios.end()));
    out.set_inconsistent_pct(100.0 * inconsistent / static_cast<double>(ratios.size()));
  }
  if (!corrs.empty()) {
    out.set_envelope_corr_median(MedianOf(corrs));
    out.set_envelope_corr_min(*std::min_element(corrs.begin(), corrs.end()));
  }
  const bool ok = ratios.empty() || out.inconsistent_pct() <= b.max_flagged_pct();
  out.set_ok(ok);
  if (!ok) {
    std::string what = absl::StrFormat(
        "%.0f%% of %d answers unlike the lowest level's (duration ratio median %.2f, min %.2f",
        out.inconsistent_pct(), out.compared(), out.duration_ratio_median(),
        out.duration_ratio_min());
    if (!corrs.empty()) {
      absl::StrAppend(&what, absl::StrFormat("; envelope r median %.2f, min %.2f",
                                             out.envelope_corr_median(), out.envelope_corr_min()));
    }
    out.set_problems(what + ")");
  }
  return out;
}

std::string Fixed(double v, int digits) { return absl::StrFormat("%.*f", digits, v); }

bool Checked(const v1::Session& session) {
  return session.has_audio_quality() && session.plan().audio_checks().enabled();
}

bool IsCliff(const v1::Session& session, const v1::LevelStats& l) {
  for (const v1::AudioCliff& c : session.audio_quality().cliffs()) {
    if (c.series() == l.series() && c.concurrency() == l.concurrency() && c.rate() == l.rate()) {
      return true;
    }
  }
  return false;
}

std::string Label(const v1::LevelStats& l) {
  return l.rate() > 0 ? absl::StrFormat("%g", l.rate()) : absl::StrCat(l.concurrency());
}

// A level none of whose answers could be analysed (a format the decoder lacks, invalid audio):
// its verdicts say nothing.
bool NotChecked(const v1::LevelStats& l) { return l.audio_integrity().analysed() == 0; }

// The session's levels as the cliffs are found: by series (in name order), then by load.
std::vector<const v1::LevelStats*> InCliffOrder(const v1::Session& session) {
  std::vector<const v1::LevelStats*> out;
  for (const v1::LevelStats& l : session.levels()) out.push_back(&l);
  std::stable_sort(out.begin(), out.end(), [](const v1::LevelStats* a, const v1::LevelStats* b) {
    if (a->series() != b->series()) return a->series() < b->series();
    const double la = a->rate() > 0 ? a->rate() : a->concurrency();
    const double lb = b->rate() > 0 ? b->rate() : b->concurrency();
    return la < lb;
  });
  return out;
}

}  // namespace

v1::AudioQuality AudioQualityBounds(const v1::AudioChecks& c) {
  v1::AudioQuality b;
  b.set_min_duration_ratio(Or(c.min_duration_ratio(), 0.9));
  b.set_max_duration_ratio(Or(c.max_duration_ratio(), 1.1));
  b.set_min_envelope_correlation(Or(c.min_envelope_correlation(), 0.8));
  b.set_outlier_z(Or(c.outlier_z(), 3.5));
  b.set_max_flagged_pct(Or(c.max_flagged_pct(), 5));
  b.set_max_clipped_fraction(Or(c.max_clipped_fraction(), 0.001));
  b.set_max_edge_silence_ms(Or(c.max_edge_silence_ms(), 1000));
  b.set_stutter_ms(Or(c.stutter_ms(), 300));
  return b;
}

RobustScale RobustScaleOf(std::vector<double> values) {
  RobustScale s;
  if (values.empty()) return s;
  s.median = MedianOf(values);
  for (double& v : values) v = std::abs(v - s.median);
  s.scale =
      std::max(kMadToSigma * MedianOf(std::move(values)), kScaleFloorOfMedian * std::abs(s.median));
  return s;
}

double RobustZ(double x, const RobustScale& s) {
  if (x == s.median) return 0;
  if (s.scale <= 0) {
    return x > s.median ? std::numeric_limits<double>::infinity()
                        : -std::numeric_limits<double>::infinity();
  }
  return (x - s.median) / s.scale;
}

std::optional<double> EnvelopeCorrelation(std::span<const float> a, double a_window_ms,
                                          std::span<const float> b, double b_window_ms) {
  const double step = a_window_ms > 0 && b_window_ms > 0 ? a_window_ms / b_window_ms : 1;
  std::vector<double> x, y;
  for (size_t i = 0; i < a.size(); ++i) {
    // The window of b holding the centre of a's window i (the same index when the widths match).
    const auto j = static_cast<size_t>((static_cast<double>(i) + 0.5) * step);
    if (j >= b.size()) break;
    x.push_back(std::clamp(static_cast<double>(a[i]), kFloorDb, 0.0));
    y.push_back(std::clamp(static_cast<double>(b[j]), kFloorDb, 0.0));
  }
  const size_t n = x.size();
  if (n < kMinEnvelopeWindows) return std::nullopt;
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) {
    mx += x[i];
    my += y[i];
  }
  mx /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double sxx = 0, syy = 0, sxy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
    sxy += (x[i] - mx) * (y[i] - my);
  }
  const double sdx = std::sqrt(sxx / static_cast<double>(n));
  const double sdy = std::sqrt(syy / static_cast<double>(n));
  const bool flat_x = sdx < kFlatSdDb, flat_y = sdy < kFlatSdDb;
  if (flat_x && flat_y) return std::abs(mx - my) <= kFlatMeanToleranceDb ? 1.0 : 0.0;
  if (flat_x || flat_y) return 0.0;
  return sxy / std::sqrt(sxx * syy);
}

void JudgeAudioQuality(const v1::AudioChecks& checks, const std::vector<AudioQualityLevel>& levels,
                       v1::Session* session) {
  v1::AudioQuality quality = AudioQualityBounds(checks);
  // Per series: its levels by load, lowest first (capacity probes run in search order).
  std::map<std::string, std::vector<size_t>> by_series;
  for (size_t i = 0; i < levels.size(); ++i) by_series[levels[i].series].push_back(i);
  for (auto& [series, order] : by_series) {
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t x, size_t y) { return Load(levels[x]) < Load(levels[y]); });
  }
  // References: each text's earliest analysed answer at its series' lowest level.
  References references;
  std::map<std::string, RobustScale> lowest_scale;
  for (const auto& [series, order] : by_series) {
    const AudioQualityLevel& lowest = levels[order.front()];
    std::vector<double> per_char;
    for (const AnalysedAnswer& a : lowest.answers) {
      if (a.chars > 0) per_char.push_back(MsPerChar(a));
      const AnalysedAnswer*& ref = references[{series, a.text_index}];
      if (ref == nullptr || a.start_ns < ref->start_ns) ref = &a;
    }
    lowest_scale[series] = RobustScaleOf(std::move(per_char));
  }
  for (size_t i = 0; i < levels.size() && i < static_cast<size_t>(session->levels_size()); ++i) {
    const AudioQualityLevel& level = levels[i];
    v1::LevelStats& stats = *session->mutable_levels(static_cast<int>(i));
    const bool is_lowest = by_series[level.series].front() == i;
    *stats.mutable_audio_integrity() =
        Integrity(level, is_lowest, lowest_scale[level.series], references, quality);
    *stats.mutable_audio_consistency() = Consistency(level, is_lowest, references, quality);
  }
  for (const auto& [series, order] : by_series) {
    for (size_t i : order) {
      if (i >= static_cast<size_t>(session->levels_size())) continue;
      const v1::LevelStats& stats = session->levels(static_cast<int>(i));
      if (stats.audio_integrity().ok() && stats.audio_consistency().ok()) continue;
      v1::AudioCliff& cliff = *quality.add_cliffs();
      cliff.set_series(series);
      cliff.set_concurrency(levels[i].concurrency);
      cliff.set_rate(levels[i].rate);
      std::vector<std::string> problems;
      if (!stats.audio_integrity().ok()) {
        problems.push_back(absl::StrCat("integrity: ", stats.audio_integrity().problems()));
      }
      if (!stats.audio_consistency().ok()) {
        problems.push_back(absl::StrCat("consistency: ", stats.audio_consistency().problems()));
      }
      cliff.set_problems(absl::StrCat(LevelName(levels[i]), ": ", absl::StrJoin(problems, "; ")));
      break;
    }
  }
  *session->mutable_audio_quality() = std::move(quality);
}

std::vector<AudioQualityLevel> AudioQualityInput(const std::vector<LevelData>& levels) {
  std::vector<AudioQualityLevel> out;
  out.reserve(levels.size());
  for (const LevelData& level : levels) {
    AudioQualityLevel& q = out.emplace_back();
    q.series = level.series;
    q.concurrency = level.concurrency;
    q.rate = level.rate;
    for (const common::Record& r : level.records) {
      // The store keeps the analysis alive (shared), so the judge may point at it.
      if (r.warmup || !common::Succeeded(r) || r.analysis == nullptr || !r.analysis->decoded()) {
        continue;
      }
      q.answers.push_back({r.text_index, r.chars, r.start_ns, r.analysis.get()});
    }
  }
  return out;
}

void ApplyAudioQuality(const v1::Plan& plan, const std::vector<LevelData>& levels,
                       v1::Session* session) {
  if (!plan.audio_checks().enabled()) return;
  JudgeAudioQuality(plan.audio_checks(), AudioQualityInput(levels), session);
}

std::string AudioQualityCsv(const v1::Session& session) {
  if (!Checked(session)) return "";
  std::string out;
  common::CsvWriter csv(&out);
  csv.Row({"series",
           "concurrency",
           "rate",
           "analysed",
           "flagged",
           "flagged_pct",
           "leading_silence",
           "trailing_silence",
           "stutters",
           "clipped",
           "clipped_fraction_max",
           "rate_mismatch",
           "channel_mismatch",
           "truncated",
           "ms_per_char_p50",
           "outliers_own",
           "outliers_lowest",
           "median_ratio",
           "median_shift_z",
           "integrity_ok",
           "compared",
           "duration_ratio_median",
           "duration_ratio_min",
           "duration_ratio_max",
           "envelope_compared",
           "envelope_corr_median",
           "envelope_corr_min",
           "inconsistent",
           "inconsistent_pct",
           "consistency_ok",
           "cliff"});
  auto num = [](double v) { return absl::StrFormat("%.6g", v); };
  for (const v1::LevelStats& l : session.levels()) {
    const v1::AudioIntegrity& g = l.audio_integrity();
    const v1::AudioConsistency& c = l.audio_consistency();
    csv.Field(l.series())
        .Field(l.concurrency())
        .Field(num(l.rate()))
        .Field(g.analysed())
        .Field(g.flagged())
        .Field(num(g.flagged_pct()))
        .Field(g.leading_silence())
        .Field(g.trailing_silence())
        .Field(g.stutters())
        .Field(g.clipped())
        .Field(num(g.clipped_fraction_max()))
        .Field(g.rate_mismatch())
        .Field(g.channel_mismatch())
        .Field(g.truncated())
        .Field(g.ms_per_char().count() > 0 ? num(g.ms_per_char().p50()) : "")
        .Field(g.outliers_own())
        .Field(g.outliers_lowest())
        .Field(g.median_ratio() > 0 ? num(g.median_ratio()) : "")
        .Field(g.median_ratio() > 0 ? num(g.median_shift_z()) : "")
        .Field(NotChecked(l) ? "" : (g.ok() ? "true" : "false"))
        .Field(c.compared())
        .Field(c.compared() > 0 ? num(c.duration_ratio_median()) : "")
        .Field(c.compared() > 0 ? num(c.duration_ratio_min()) : "")
        .Field(c.compared() > 0 ? num(c.duration_ratio_max()) : "")
        .Field(c.envelope_compared())
        .Field(c.envelope_compared() > 0 ? num(c.envelope_corr_median()) : "")
        .Field(c.envelope_compared() > 0 ? num(c.envelope_corr_min()) : "")
        .Field(c.inconsistent())
        .Field(num(c.inconsistent_pct()))
        .Field(NotChecked(l) ? "" : (c.ok() ? "true" : "false"))
        .Field(NotChecked(l) ? "" : (IsCliff(session, l) ? "true" : "false"))
        .EndRow();
  }
  return out;
}

std::string AudioQualityConsole(const v1::Session& session) {
  if (!Checked(session)) return "";
  const v1::AudioQuality& q = session.audio_quality();
  // A series column when the session has several (voices, streaming on and off).
  size_t series_width = 0;
  for (const v1::LevelStats& l : session.levels()) {
    series_width = std::max(series_width, l.series().size());
  }
  if (series_width > 0) series_width = std::max<size_t>(series_width, 6);  // "Series"
  std::string out = absl::StrFormat(
      "Audio under load (duration ratio in [%g, %g], envelope r >= %g, at most %g%% flagged):\n"
      "  %s%-6s %-9s %-9s %-10s %-9s %-9s %s\n",
      q.min_duration_ratio(), q.max_duration_ratio(), q.min_envelope_correlation(),
      q.max_flagged_pct(),
      series_width > 0 ? absl::StrFormat("%-*s ", static_cast<int>(series_width), "Series") : "",
      "Level", "Analysed", "Flagged", "ms/char", "Dur.rat", "Env.r", "Verdict");
  size_t unchecked = 0;
  for (const v1::LevelStats* lp : InCliffOrder(session)) {
    const v1::LevelStats& l = *lp;
    const v1::AudioIntegrity& g = l.audio_integrity();
    const v1::AudioConsistency& c = l.audio_consistency();
    const bool ok = g.ok() && c.ok();
    unchecked += NotChecked(l) ? 1 : 0;
    const std::string verdict = NotChecked(l) ? "not checked (nothing analysed)"
                                : ok          ? "ok"
                                              : (IsCliff(session, l) ? "BAD (cliff)" : "BAD");
    absl::StrAppend(
        &out,
        absl::StrFormat(
            "  %s%-6s %-9d %-9s %-10s %-9s %-9s %s\n",
            series_width > 0 ? absl::StrFormat("%-*s ", static_cast<int>(series_width), l.series())
                             : "",
            Label(l), g.analysed(),
            absl::StrCat(g.flagged(), " (", Fixed(g.flagged_pct(), 0), "%)"),
            g.ms_per_char().count() > 0 ? Fixed(g.ms_per_char().p50(), 1) : "-",
            c.compared() > 0 ? Fixed(c.duration_ratio_median(), 3) : "-",
            c.envelope_compared() > 0 ? Fixed(c.envelope_corr_median(), 3) : "-", verdict));
  }
  if (unchecked == static_cast<size_t>(session.levels_size())) {
    absl::StrAppend(&out,
                    "  Audio not checked: no answer could be analysed at any level (see the "
                    "warnings).\n");
  } else if (q.cliffs_size() == 0) {
    absl::StrAppend(&out, "  No audio cliff: integrity and consistency held at every level",
                    unchecked > 0 ? absl::StrCat(" checked (", unchecked, " not checked)") : "",
                    ".\n");
  }
  for (const v1::AudioCliff& c : q.cliffs()) {
    absl::StrAppend(&out, "  Audio cliff", c.series().empty() ? "" : " [" + c.series() + "]",
                    " at ", c.problems(), "\n");
  }
  return out;
}

std::string AudioQualityHtml(const v1::Session& session) {
  if (!Checked(session)) return "";
  const v1::AudioQuality& q = session.audio_quality();
  std::string out = absl::StrCat(
      "<h2>Audio integrity and consistency under load</h2>\n<p class=\"muted\">",
      HtmlEscape(absl::StrFormat(
          "Each text's first answer at the lowest level is its reference. Bounds: duration "
          "ratio in [%g, %g], RMS-envelope correlation at least %g; a duration outside the "
          "ratio bounds against its text's reference (for a text the lowest level never said: "
          "|robust z| of ms per character above %g) is an outlier, never at the lowest level; "
          "a level is bad when more than %g%% of its answers are flagged or unlike their "
          "reference.",
          q.min_duration_ratio(), q.max_duration_ratio(), q.min_envelope_correlation(),
          q.outlier_z(), q.max_flagged_pct())),
      "</p>\n<p>");
  const bool none_checked = std::all_of(session.levels().begin(), session.levels().end(),
                                        [](const v1::LevelStats& l) { return NotChecked(l); });
  if (none_checked) {
    absl::StrAppend(&out,
                    "<span class=\"badge\">not checked</span> no answer could be analysed at "
                    "any level (see the warnings)");
  } else if (q.cliffs_size() == 0) {
    absl::StrAppend(&out,
                    "<span class=\"badge ok\">no cliff</span> integrity and consistency "
                    "held at every level checked");
  }
  for (const v1::AudioCliff& c : q.cliffs()) {
    absl::StrAppend(
        &out, "<span class=\"badge bad\">cliff</span> ",
        HtmlEscape(absl::StrCat(c.series().empty() ? "" : "[" + c.series() + "] ", c.problems())),
        "<br>");
  }
  absl::StrAppend(&out,
                  "</p>\n<div class=\"scroll\"><table>\n<tr><th class=\"l\">Series</th>"
                  "<th>Level</th><th>Analysed</th><th>Flagged</th><th>Truncated</th>"
                  "<th>Stutters</th><th>Edge silences</th><th>Clipped</th><th>Format "
                  "mismatches</th><th>ms/char p50</th><th>Outliers (own ms/char / duration)</th>"
                  "<th>Median vs lowest</th><th>Compared</th><th>Duration ratio median / "
                  "min</th><th>Envelope r median / min</th><th>Unlike reference</th>"
                  "<th class=\"l\">Verdict</th></tr>\n");
  for (const v1::LevelStats* lp : InCliffOrder(session)) {
    const v1::LevelStats& l = *lp;
    const v1::AudioIntegrity& g = l.audio_integrity();
    const v1::AudioConsistency& c = l.audio_consistency();
    const bool ok = g.ok() && c.ok();
    std::string verdict = ok ? "ok" : absl::StrJoin({g.problems(), c.problems()}, " ");
    absl::StrAppend(
        &out, "<tr><td class=\"l\">", HtmlEscape(l.series()), "</td><td>", Label(l), "</td><td>",
        g.analysed(), "</td><td>", g.flagged(), " (", Fixed(g.flagged_pct(), 1), "%)</td><td>",
        g.truncated(), "</td><td>", g.stutters(), "</td><td>",
        g.leading_silence() + g.trailing_silence(), "</td><td>", g.clipped(), "</td><td>",
        g.rate_mismatch() + g.channel_mismatch(), "</td><td>",
        g.ms_per_char().count() > 0 ? Fixed(g.ms_per_char().p50(), 2) : "-", "</td><td>",
        g.outliers_own(), " / ", g.outliers_lowest(), "</td><td>",
        g.median_ratio() > 0 ? absl::StrCat(Fixed(g.median_ratio(), 3), "x") : "-", "</td><td>",
        c.compared(), "</td><td>",
        c.compared() > 0 ? absl::StrCat(Fixed(c.duration_ratio_median(), 3), " / ",
                                        Fixed(c.duration_ratio_min(), 3))
                         : "-",
        "</td><td>",
        c.envelope_compared() > 0 ? absl::StrCat(Fixed(c.envelope_corr_median(), 3), " / ",
                                                 Fixed(c.envelope_corr_min(), 3))
                                  : "-",
        "</td><td>", c.inconsistent(), "</td><td class=\"l\">",
        NotChecked(l) ? "<span class=\"badge\">not checked</span> nothing analysed"
                      : absl::StrCat("<span class=\"badge ", ok ? "ok" : "bad", "\">",
                                     ok ? "ok" : (IsCliff(session, l) ? "cliff" : "bad"),
                                     "</span> ", ok ? "" : HtmlEscape(verdict)),
        "</td></tr>\n");
  }
  absl::StrAppend(&out, "</table></div>\n");
  return out;
}

}  // namespace ttsbench::coordinator
