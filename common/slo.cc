#include "common/slo.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace ttsbench::common {
namespace {

enum class Kind { kTime, kRatio, kPercent, kThroughput };

struct MetricInfo {
  const char* name;
  Kind kind;
  bool upper_bound;
};

constexpr MetricInfo kMetrics[] = {
    {"ttfa_p50", Kind::kTime, true},         {"ttfa_p95", Kind::kTime, true},
    {"ttfa_p99", Kind::kTime, true},         {"ttfa_mean", Kind::kTime, true},
    {"latency_p50", Kind::kTime, true},      {"latency_p95", Kind::kTime, true},
    {"latency_p99", Kind::kTime, true},      {"latency_mean", Kind::kTime, true},
    {"rtf_mean", Kind::kRatio, true},        {"rtf_p50", Kind::kRatio, true},
    {"rtf_p95", Kind::kRatio, true},         {"rtf_p99", Kind::kRatio, true},
    {"success_rate", Kind::kPercent, false}, {"continuity_ok", Kind::kPercent, false},
    {"asps", Kind::kThroughput, false},      {"rps", Kind::kThroughput, false},
    {"goodput", Kind::kThroughput, false},
};

const MetricInfo* FindMetric(absl::string_view name) {
  for (const MetricInfo& m : kMetrics) {
    if (name == m.name) return &m;
  }
  return nullptr;
}

double Pick(const v1::Distribution& d, absl::string_view stat) {
  if (stat == "p50") return d.p50();
  if (stat == "p95") return d.p95();
  if (stat == "p99") return d.p99();
  return d.mean();
}

absl::string_view StatOf(absl::string_view metric) { return metric.substr(metric.rfind('_') + 1); }

}  // namespace

const std::vector<std::string>& SloMetricNames() {
  static const std::vector<std::string>* names = [] {
    auto* v = new std::vector<std::string>;
    for (const MetricInfo& m : kMetrics) v->push_back(m.name);
    return v;
  }();
  return *names;
}

absl::StatusOr<Slo> ParseSlo(absl::string_view text) {
  auto bad = [](absl::string_view why) { return absl::InvalidArgumentError(why); };
  const size_t eq = text.find('=');
  if (eq == absl::string_view::npos) {
    return bad(absl::StrCat("'", text, "' is not NAME=VALUE (e.g. ttfa_p95=300ms)"));
  }
  Slo slo;
  slo.text = std::string(text);
  slo.metric = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text.substr(0, eq)));
  const MetricInfo* info = FindMetric(slo.metric);
  if (info == nullptr) {
    return bad(absl::StrCat("unknown metric '", slo.metric, "' (one of ",
                            absl::StrJoin(SloMetricNames(), ", "), ")"));
  }
  slo.upper_bound = info->upper_bound;
  const absl::string_view value = absl::StripAsciiWhitespace(text.substr(eq + 1));
  const size_t unit_at = value.find_first_not_of("0123456789.+-eE");
  const absl::string_view number = value.substr(0, unit_at);
  const absl::string_view unit = unit_at == absl::string_view::npos
                                     ? absl::string_view()
                                     : absl::StripAsciiWhitespace(value.substr(unit_at));
  if (!absl::SimpleAtod(number, &slo.threshold) || !std::isfinite(slo.threshold) ||
      slo.threshold < 0) {
    return bad(absl::StrCat("'", value, "' is not a threshold (a number >= 0)"));
  }
  const std::string& name = slo.metric;
  switch (info->kind) {
    case Kind::kTime:
      if (unit == "s") {
        slo.threshold *= 1000;
      } else if (unit != "ms") {
        return bad(absl::StrCat(name, " needs a unit, ms or s (e.g. ", name, "=300ms)"));
      }
      break;
    case Kind::kPercent:
      // 0.99 for 99% is the likely slip; a bare number is refused rather than guessed.
      if (unit != "%") return bad(absl::StrCat(name, " is a percentage (e.g. ", name, "=99%)"));
      if (slo.threshold > 100) return bad(absl::StrCat(name, " must be <= 100%"));
      break;
    case Kind::kRatio:
    case Kind::kThroughput:
      if (!unit.empty()) {
        return bad(absl::StrCat(name, " takes a plain number, got unit '", unit, "'"));
      }
      break;
  }
  return slo;
}

absl::StatusOr<std::vector<Slo>> ParseSlos(const std::vector<std::string>& texts,
                                           size_t* bad_index) {
  std::vector<Slo> out;
  for (size_t i = 0; i < texts.size(); ++i) {
    auto slo = ParseSlo(texts[i]);
    absl::Status error = slo.status();
    if (slo.ok()) {
      // Two thresholds for one metric: which one was meant is anyone's guess.
      for (size_t j = 0; j < out.size() && error.ok(); ++j) {
        if (out[j].metric == slo->metric) {
          error = absl::InvalidArgumentError(
              absl::StrCat(slo->metric, " is already set by slo[", j, "]"));
        }
      }
    }
    if (!error.ok()) {
      if (bad_index != nullptr) *bad_index = i;
      return absl::InvalidArgumentError(absl::StrCat("slo[", i, "]: ", error.message()));
    }
    out.push_back(std::move(*slo));
  }
  return out;
}

double SloValue(const Slo& slo, const v1::LevelStats& l) {
  const absl::string_view m = slo.metric;
  if (absl::StartsWith(m, "ttfa_")) return Pick(l.ttfa_ms(), StatOf(m));
  if (absl::StartsWith(m, "latency_")) return Pick(l.latency_ms(), StatOf(m));
  if (absl::StartsWith(m, "rtf_")) return Pick(l.rtf(), StatOf(m));
  if (m == "success_rate") return l.success_rate_pct();
  if (m == "continuity_ok") return l.continuity_ok_pct();
  if (m == "asps") return l.asps();
  if (m == "rps") return l.rps();
  if (m == "goodput") return l.goodput_rps();
  return 0;
}

std::vector<Slo> WithDefaultSlos(std::vector<Slo> slos) {
  for (const Slo& s : slos) {
    if (s.metric == "success_rate") return slos;
  }
  auto floor = ParseSlo(kDefaultSuccessRateSlo);
  if (floor.ok()) {
    floor->text = absl::StrCat(floor->text, kDefaultSloSuffix);
    slos.push_back(*std::move(floor));
  }
  return slos;
}

v1::SloResult EvaluateSlo(const Slo& slo, const v1::LevelStats& level) {
  v1::SloResult r;
  r.set_slo(slo.text);
  r.set_metric(slo.metric);
  r.set_threshold(slo.threshold);
  const double v = SloValue(slo, level);
  r.set_value(v);
  // A level with no successful request has no latency to judge: it fails every SLO, except a
  // success rate, which is defined (0 %) and which `success_rate=0%` must let pass.
  const bool has_data = level.successful() > 0 || slo.metric == "success_rate";
  r.set_pass(has_data && (slo.upper_bound ? v <= slo.threshold : v >= slo.threshold));
  return r;
}

RequestSloBounds RequestBoundsOf(const std::vector<Slo>& slos) {
  RequestSloBounds b;
  for (const Slo& s : slos) {
    if (absl::StartsWith(s.metric, "ttfa_")) b.ttfa_ms = std::min(b.ttfa_ms, s.threshold);
    if (absl::StartsWith(s.metric, "latency_")) b.latency_ms = std::min(b.latency_ms, s.threshold);
    if (absl::StartsWith(s.metric, "rtf_")) {
      b.rtf = std::min(b.rtf, s.threshold);
      b.has_rtf = true;
    }
  }
  return b;
}

bool RequestMeetsSlos(const std::vector<Slo>& slos, const v1::RequestRecord& r) {
  const double latency_ms = static_cast<double>(r.end_ns() - r.start_ns()) / 1e6;
  const double ttfa_ms = static_cast<double>(r.first_audio_ns() - r.start_ns()) / 1e6;
  return RequestMeetsSloBounds(RequestBoundsOf(slos), latency_ms, ttfa_ms, r.audio_s());
}

}  // namespace ttsbench::common
