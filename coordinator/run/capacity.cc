#include "coordinator/run/capacity.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/slo.h"
#include "common/stats.h"

namespace ttsbench::coordinator {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int kBeyondPercentile = 10;   // requests past the judged percentile, at least
constexpr int64_t kRoundsPerUser = 5;   // closed loop: requests per user, at least
constexpr int64_t kMeanRequests = 100;  // mean or throughput objectives
constexpr int64_t kDefaultMinRequests = 20;
constexpr int64_t kMaxProbeRequests = 10'000'000;

// The quantile a latency-type SLO names ("ttfa_p99" -> 0.99); < 0 for a mean.
double QuantileOf(const std::string& metric) {
  const size_t at = metric.rfind("_p");
  int pct = 0;
  if (at == std::string::npos || !absl::SimpleAtoi(metric.substr(at + 2), &pct)) return -1;
  return pct / 100.0;
}

bool IsTime(const std::string& metric) {
  return absl::StartsWith(metric, "ttfa_") || absl::StartsWith(metric, "latency_");
}

bool IsPerRequest(const std::string& metric) {
  return IsTime(metric) || absl::StartsWith(metric, "rtf_");
}

// The per-request values behind a latency-type SLO, sorted: measured, successful requests.
std::vector<double> SortedValues(const common::RecordStore& records, const std::string& metric) {
  std::vector<double> v;
  for (const common::Record& r : records) {
    if (r.warmup || !common::Succeeded(r) || r.end_ns < r.start_ns) continue;
    const double latency_ms = static_cast<double>(r.end_ns - r.start_ns) / 1e6;
    if (absl::StartsWith(metric, "ttfa_")) {
      if (r.first_audio_ns > 0) {
        v.push_back(static_cast<double>(r.first_audio_ns - r.start_ns) / 1e6);
      }
    } else if (absl::StartsWith(metric, "latency_")) {
      v.push_back(latency_ms);
    } else if (r.audio_s > 0) {
      v.push_back(latency_ms / 1000 / r.audio_s);
    }
  }
  std::sort(v.begin(), v.end());
  return v;
}

const v1::CapacityProbeResult* ProbeAt(const v1::CapacityResult& r, double load) {
  for (const v1::CapacityProbeResult& p : r.probes()) {
    if (p.load() == load) return &p;
  }
  return nullptr;
}

std::string Number(double v, const std::string& unit) {
  if (std::isnan(v)) return "n/a";  // too few requests to bound that side
  return absl::StrCat(absl::StrFormat("%.4g", v), unit);
}

// "  ttfa_p99=25ms at 48: 6.1ms, 95% CI [5.8ms, 6.6ms] from 1000 requests: pass"
std::string EstimateLines(const v1::CapacityProbeResult& p) {
  std::string out;
  for (const v1::SloEstimate& e : p.slo()) {
    const size_t eq = e.slo().find('=');
    const std::string metric =
        absl::AsciiStrToLower(absl::StripAsciiWhitespace(e.slo().substr(0, eq)));
    const std::string unit = IsTime(metric) ? "ms" : "";
    absl::StrAppend(&out, "  ", e.slo(), " at ", absl::StrFormat("%g", p.load()), ": ",
                    Number(e.value(), unit));
    if (e.confidence() > 0) {
      absl::StrAppend(&out, absl::StrFormat(", %g%% CI [%s, %s]", 100 * e.confidence(),
                                            Number(e.ci_low(), unit), Number(e.ci_high(), unit)));
    }
    absl::StrAppend(&out, " from ", e.samples(), " requests: ", e.pass() ? "pass" : "FAIL");
    // The verdict follows the estimate; when the interval holds the limit, a rerun may differ.
    if (auto slo = common::ParseSlo(e.slo());
        slo.ok() && e.confidence() > 0 && !std::isnan(e.ci_low()) && !std::isnan(e.ci_high()) &&
        e.ci_low() <= slo->threshold && slo->threshold <= e.ci_high()) {
      absl::StrAppend(&out, " (inconclusive: the interval holds the limit; a rerun may differ)");
    }
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace

absl::StatusOr<v1::CapacityResult> SearchCapacity(const v1::CapacitySearch& search, bool integer,
                                                  const CapacityProbe& probe) {
  const double start = search.start() > 0 ? search.start() : 1;
  const double max = search.max() > 0 ? search.max() : 4096;
  const double resolution = (search.resolution_pct() > 0 ? search.resolution_pct() : 10) / 100;
  v1::CapacityResult r;
  r.set_unit(integer ? "concurrency" : "requests/s");
  auto run = [&](double load) -> absl::StatusOr<bool> {
    auto result = probe(load);
    if (!result.ok()) return result.status();
    result->set_load(load);
    r.add_probed(load);
    r.add_passed(result->passed());
    *r.add_probes() = std::move(*result);
    return r.passed(r.passed_size() - 1);
  };
  double pass = 0, fail = 0;
  // Doubling: the first failure brackets the answer.
  for (double load = start; load <= max; load *= 2) {
    if (integer) load = std::round(load);
    auto ok = run(load);
    if (!ok.ok()) return ok.status();
    if (!*ok) {
      fail = load;
      break;
    }
    pass = load;
  }
  // Bisection inside (pass, fail) until the bracket is narrow enough.
  while (fail > 0) {
    const double width = fail - pass;
    const double needed = std::max(integer ? 1.0 : 0.0, resolution * std::max(pass, 1.0));
    if (width <= needed || (integer && width <= 1)) break;
    double mid = (pass + fail) / 2;
    if (integer) mid = std::floor(mid);
    if (mid <= pass || mid >= fail) break;
    auto ok = run(mid);
    if (!ok.ok()) return ok.status();
    (*ok ? pass : fail) = mid;
  }
  r.set_found(pass);
  r.set_first_failing(fail);
  // --target-streams without --replicas: the URL is one replica.
  const int replicas = search.replicas() > 0 ? search.replicas() : search.target_streams() > 0;
  if (replicas > 0 && pass > 0) {
    r.set_per_replica(pass / replicas);
    if (search.target_streams() > 0) {
      r.set_replicas_needed(
          static_cast<int32_t>(std::ceil(search.target_streams() / r.per_replica())));
    }
  }
  return r;
}

int64_t ProbeRequests(const v1::CapacitySearch& search, const std::vector<common::Slo>& slos,
                      double load, bool integer, int64_t plan_iterations) {
  int64_t n = std::max<int64_t>(
      {search.min_requests() > 0 ? search.min_requests() : kDefaultMinRequests, plan_iterations});
  for (const common::Slo& slo : slos) {
    const double q = IsPerRequest(slo.metric) ? QuantileOf(slo.metric) : -1;
    if (q > 0) {
      n = std::max(n, common::SamplesToResolve(q, kBeyondPercentile));
    } else if (slo.metric == "success_rate" || slo.metric == "continuity_ok") {
      // A 99% rate is judged on the 1% that fail: it needs as many requests as a p99.
      const double share = slo.threshold / 100;
      n = std::max(n, share > 0 && share < 1 ? common::SamplesToResolve(share, kBeyondPercentile)
                                             : kMeanRequests);
    } else {
      n = std::max(n, kMeanRequests);
    }
  }
  if (integer) n = std::max(n, kRoundsPerUser * static_cast<int64_t>(std::ceil(load)));
  return std::min(n, kMaxProbeRequests);
}

v1::CapacityProbeResult JudgeProbe(double load, int64_t planned_requests,
                                   const v1::LevelStats& stats, const common::RecordStore& records,
                                   const std::vector<common::Slo>& slos) {
  v1::CapacityProbeResult p;
  p.set_load(load);
  p.set_planned_requests(planned_requests);
  p.set_measured(stats.attempted());
  bool passed = stats.successful() > 0;
  for (const v1::SloResult& r : stats.slo()) passed = passed && r.pass();
  p.set_passed(passed);
  for (size_t i = 0; i < slos.size(); ++i) {
    const common::Slo& slo = slos[i];
    v1::SloEstimate* e = p.add_slo();
    e->set_slo(slo.text);
    const v1::SloResult* verdict =
        i < static_cast<size_t>(stats.slo_size()) ? &stats.slo(static_cast<int>(i)) : nullptr;
    e->set_value(verdict != nullptr ? verdict->value() : common::SloValue(slo, stats));
    e->set_pass(verdict != nullptr && verdict->pass());
    e->set_samples(stats.attempted());
    const double q = IsPerRequest(slo.metric) ? QuantileOf(slo.metric) : -1;
    if (q <= 0) continue;
    const std::vector<double> values = SortedValues(records, slo.metric);
    e->set_samples(static_cast<int64_t>(values.size()));
    if (values.empty()) {
      e->set_ci_low(kNaN);
      e->set_ci_high(kNaN);
    } else {
      const common::Interval ci = common::QuantileConfidenceInterval(values, q, kProbeConfidence);
      e->set_ci_low(ci.low);
      e->set_ci_high(ci.high);
    }
    e->set_confidence(kProbeConfidence);
  }
  return p;
}

std::string CapacitySummary(const v1::CapacityResult& c, const v1::CapacitySearch& search) {
  if (c.probed_size() == 0) return "";
  std::string out;
  if (c.found() > 0) {
    absl::StrAppend(&out,
                    absl::StrFormat("Capacity: %g (%s) meets every SLO", c.found(), c.unit()));
    if (c.first_failing() > 0)
      absl::StrAppend(&out, absl::StrFormat("; %g does not", c.first_failing()));
    absl::StrAppend(&out, "\n");
  } else {
    absl::StrAppend(&out, "Capacity: no probed load met every SLO\n");
  }
  for (double load : {c.found(), c.first_failing()}) {
    if (load <= 0) continue;
    if (const v1::CapacityProbeResult* p = ProbeAt(c, load); p != nullptr) {
      absl::StrAppend(&out, EstimateLines(*p));
    }
  }
  if (c.probes_size() > 0) {
    int64_t lo = std::numeric_limits<int64_t>::max(), hi = 0;
    absl::StrAppend(&out, "  probes:");
    for (const v1::CapacityProbeResult& p : c.probes()) {
      absl::StrAppend(&out, absl::StrFormat(" %g %s", p.load(), p.passed() ? "ok" : "fail"),
                      &p == &c.probes(c.probes_size() - 1) ? "" : ",");
      lo = std::min(lo, p.measured());
      hi = std::max(hi, p.measured());
    }
    absl::StrAppend(&out, lo == hi ? absl::StrFormat(" (%d measured requests each)\n", lo)
                                   : absl::StrFormat(" (%d-%d measured requests each)\n", lo, hi));
  }
  if (c.per_replica() > 0) {
    absl::StrAppend(&out, absl::StrFormat("  per replica: %.3g", c.per_replica()));
    if (c.replicas_needed() > 0) {
      absl::StrAppend(&out, absl::StrFormat("; replicas needed for %d streams: %d",
                                            search.target_streams(), c.replicas_needed()));
    }
    absl::StrAppend(&out, "\n");
  }
  // Cost (issue 14): monthly cost of the replicas, and the level found's cost per output.
  if (c.monthly_cost_usd() > 0 && c.cost_per_replica_hour_usd() > 0) {
    const double replicas = c.monthly_cost_usd() / (c.cost_per_replica_hour_usd() * 730);
    absl::StrAppend(
        &out, absl::StrFormat("  cost: %.0f replica%s x $%.2f/h x 730 h = $%.2f per month",
                              replicas, replicas == 1 ? "" : "s", c.cost_per_replica_hour_usd(),
                              c.monthly_cost_usd()));
    if (c.cost_per_audio_hour_usd() > 0) {
      absl::StrAppend(
          &out, absl::StrFormat("; at %g: $%.4f per audio-hour, $%.4f per million chars", c.found(),
                                c.cost_per_audio_hour_usd(), c.cost_per_million_chars_usd()));
    }
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace ttsbench::coordinator
