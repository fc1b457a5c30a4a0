#include "common/slo.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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

absl::StatusOr<Slo> ParseSlo(absl::string_view text) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("slo '", text, "': ", why));
  };
  const size_t eq = text.find('=');
  if (eq == absl::string_view::npos) return bad("expected NAME=VALUE, e.g. ttfa_p95=300ms");
  Slo slo;
  slo.text = std::string(text);
  slo.metric = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text.substr(0, eq)));
  const MetricInfo* info = FindMetric(slo.metric);
  if (info == nullptr) {
    return bad(
        "unknown metric (ttfa_p50|p95|p99|mean, latency_p50|p95|p99|mean, rtf_mean|p50|p95|p99, "
        "success_rate, continuity_ok, asps, rps, goodput)");
  }
  slo.upper_bound = info->upper_bound;
  absl::string_view value = absl::StripAsciiWhitespace(text.substr(eq + 1));
  double scale = 1;
  if (info->kind == Kind::kTime) {
    if (absl::ConsumeSuffix(&value, "ms")) {
      scale = 1;
    } else if (absl::ConsumeSuffix(&value, "s")) {
      scale = 1000;
    } else {
      return bad("give a unit: ms or s");
    }
  } else if (info->kind == Kind::kPercent) {
    absl::ConsumeSuffix(&value, "%");
  }
  if (!absl::SimpleAtod(value, &slo.threshold) || !(slo.threshold >= 0)) {
    return bad("the value is not a non-negative number");
  }
  slo.threshold *= scale;
  if (info->kind == Kind::kPercent && slo.threshold > 100) return bad("a percentage above 100");
  return slo;
}

absl::StatusOr<std::vector<Slo>> ParseSlos(const std::vector<std::string>& texts) {
  std::vector<Slo> out;
  for (const std::string& t : texts) {
    auto slo = ParseSlo(t);
    if (!slo.ok()) return slo.status();
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

v1::SloResult EvaluateSlo(const Slo& slo, const v1::LevelStats& level) {
  v1::SloResult r;
  r.set_slo(slo.text);
  r.set_metric(slo.metric);
  r.set_threshold(slo.threshold);
  const double v = SloValue(slo, level);
  r.set_value(v);
  // A level with no successful request has no latency to judge: it fails every SLO.
  const bool has_data = level.successful() > 0;
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
