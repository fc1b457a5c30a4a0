// `ttsbench compare A B [C ...]`: each candidate session against the baseline A, level by level,
// with per-request statistics deciding what is a regression and what is noise, and the
// `--fail-on metric=±N%` rules a CI gate exits 4 on.
#ifndef TTSBENCH_COORDINATOR_COMPARE_H_
#define TTSBENCH_COORDINATOR_COMPARE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "coordinator/sessions/sessions.h"

namespace ttsbench::coordinator {

// `compare` exits 5 when the gate could not check what it was asked to (a rule whose metric is
// n/a at a level, no level in common) and nothing regressed; --allow-unevaluated accepts that.
// 4 (kExitRegression, session_runner.h) stays "a rule was crossed".
inline constexpr int kExitNotEvaluated = 5;

// "asps=-5%", "ttfa_p95=+10%", "latency_p99=+50ms", "rtf_p95=+0.05", "success_rate=-1".
// Percent thresholds are relative to the baseline; others are absolute in the metric's unit
// (ms for latency/TTFA, percentage points for success_rate). The sign may be omitted; when given
// it must be the metric's bad direction (- for asps, rps, success_rate; + for the rest).
struct FailRule {
  std::string text;      // as written
  std::string metric;    // one of CompareMetricNames()
  double threshold = 0;  // magnitude, > 0
  bool percent = true;
};

absl::StatusOr<FailRule> ParseFailRule(absl::string_view text);

// asps rps rtf_mean rtf_p95 ttfa_p50 ttfa_p95 ttfa_p99 latency_p50 latency_p95 latency_p99
// success_rate, in table order.
const std::vector<std::string>& CompareMetricNames();

struct CompareOptions {
  double alpha = 0.01;                 // significance level of the tests
  double min_effect_pct = 2.0;         // smaller relative changes are never called regressions
  double min_effect_success_pp = 1.0;  // same for success rate, in percentage points
  int bootstrap_resamples = 2000;      // reduced automatically for very large levels
  uint64_t seed = 20240601;            // the bootstrap is seeded: same inputs, same verdicts
  int min_samples = 8;                 // fewer per side: no verdict
  std::vector<FailRule> fail_on;
  // A rule (or, without rules, the whole comparison) that could not be evaluated passes instead
  // of failing the gate.
  bool allow_unevaluated = false;
};

enum class Verdict {
  kNoData,    // too few per-request samples (or no requests.csv) to judge
  kNoChange,  // not significant, or significant but below the practical threshold
  kImproved,
  kRegressed,
};
absl::string_view VerdictName(Verdict v);  // n/a, same, better, WORSE

struct MetricComparison {
  std::string metric;
  double baseline = 0;  // as in summary.csv
  double candidate = 0;
  double delta = 0;      // candidate - baseline
  double delta_pct = 0;  // NaN when the baseline is 0
  double p_value = 0;    // of the test of this statistic (see CompareTable); NaN when not tested
  double ci_low = 0;     // bootstrap (1 - alpha) interval of the delta; NaN when not computed
  double ci_high = 0;
  // The interval the verdict rests on: for a mean, the delta's (as ci_*); for a percentile, the
  // interval of the change in the share of requests beyond the pooled quantile, far steadier
  // than a resampled p99. Not written to the files.
  double moved_low = 0;
  double moved_high = 0;
  bool significant = false;  // p < alpha and the interval the verdict rests on excludes 0
  Verdict verdict = Verdict::kNoData;
  std::string why_no_data;  // with kNoData: what was missing, e.g. "baseline has 3 requests..."
};

struct LevelComparison {
  std::string label;  // LevelLabel()
  std::string series;
  int concurrency = 0;
  double rate = 0;
  size_t baseline_samples = 0;  // measured requests with per-request data
  size_t candidate_samples = 0;
  std::vector<MetricComparison> metrics;  // CompareMetricNames() order
};

struct CandidateComparison {
  std::string baseline;  // session names
  std::string candidate;
  std::vector<LevelComparison> levels;
  std::vector<std::string> unmatched;  // level labels present on one side only
  std::vector<std::string> notes;
};

struct RuleResult {
  FailRule rule;
  bool crossed = false;
  std::vector<std::string> where;  // "candidate level: delta" for each crossing
  // Why the rule could not be checked somewhere: its metric n/a at a level, or a candidate with
  // no level in common. Empty: evaluated at every level of every candidate.
  std::vector<std::string> not_evaluated;
};

struct ComparisonResult {
  std::vector<CandidateComparison> candidates;
  std::vector<RuleResult> rules;
  bool any_rule_crossed = false;
  bool any_regression = false;  // some metric of some level has verdict kRegressed
  // Without rules, the implicit gate ("any WORSE") checked nothing for these reasons: a
  // candidate with no level in common, or every metric n/a. With rules: see RuleResult.
  std::vector<std::string> not_evaluated;
  bool allow_unevaluated = false;  // CompareOptions::allow_unevaluated
};

// sessions[0] is the baseline; every other session is compared with it. Levels are matched by
// series and concurrency (closed loop) or offered rate (open loop).
absl::StatusOr<ComparisonResult> CompareSessions(const std::vector<LoadedSession>& sessions,
                                                 const CompareOptions& options);

// What the CLI exits 4 on: a crossed rule when rules were given, otherwise any regression.
bool ComparisonFailed(const ComparisonResult& result);

// What it exits 5 on (when nothing failed): some rule, or the implicit gate, was not evaluated
// and allow_unevaluated is off.
bool ComparisonUnevaluated(const ComparisonResult& result);

// Console table: per candidate and level, each metric's values, deltas, p-value and verdict,
// then the rules.
std::string CompareTable(const ComparisonResult& result);

// compare.csv: one row per candidate, level and metric.
std::string CompareCsv(const ComparisonResult& result);

// The same as JSON (NaN written as null), for tooling.
absl::StatusOr<std::string> CompareJson(const ComparisonResult& result);

// Writes compare.csv and compare.json into `dir` (the CLI's default: the folder of the last
// session named, the newest candidate).
absl::Status WriteComparison(const std::string& dir, const ComparisonResult& result);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_COMPARE_H_
