// Service-level objectives, k6-threshold style: "ttfa_p95=300ms", "rtf_p95=0.5",
// "success_rate=99%". Evaluated per level; latency-type objectives also apply per request for
// goodput (vLLM's definition: requests that meet every SLO, per second).
#ifndef TTSBENCH_COMMON_SLO_H_
#define TTSBENCH_COMMON_SLO_H_

#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::common {

struct Slo {
  std::string text;         // as written
  std::string metric;       // ttfa_p95, latency_p99, rtf_mean, success_rate, asps, ...
  double threshold = 0;     // ms for ttfa/latency, ratio for rtf, % for rates, 1/s for throughput
  bool upper_bound = true;  // value must be <= threshold (else >=)
};

// The one SLO grammar, used by the CLI and the plan validator alike: NAME=VALUE with NAME one of
// SloMetricNames(); ttfa_* and latency_* take ms or s, success_rate and continuity_ok a % (at most
// 100), rtf_* and throughputs a plain number; every value >= 0.
const std::vector<std::string>& SloMetricNames();

// InvalidArgument saying what is wrong (the caller adds where: "slo[2]: ", a file line, ...).
absl::StatusOr<Slo> ParseSlo(absl::string_view text);
// Each entry parsed, and no metric twice. The message starts "slo[i]: "; `bad_index`, when given,
// receives i.
absl::StatusOr<std::vector<Slo>> ParseSlos(const std::vector<std::string>& texts,
                                           size_t* bad_index = nullptr);

// The success-rate floor every level must meet when the plan sets no success_rate objective: a
// run where most requests fail measured nothing, and must not pass (a CI job would). The plan's
// own success_rate objective replaces it; `success_rate=0%` turns it off.
inline constexpr absl::string_view kDefaultSuccessRateSlo = "success_rate=50%";
// How the floor reads in results: its text with " (default)" appended.
inline constexpr absl::string_view kDefaultSloSuffix = " (default)";
// `slos` plus the default floor when none of them is a success_rate objective.
std::vector<Slo> WithDefaultSlos(std::vector<Slo> slos);

// The level's value of the SLO's metric, in the threshold's unit.
double SloValue(const Slo& slo, const v1::LevelStats& level);
v1::SloResult EvaluateSlo(const Slo& slo, const v1::LevelStats& level);

// Whether one successful request meets every latency-type SLO (ttfa_*, latency_*, rtf_*);
// level-only metrics (success_rate, asps, ...) do not apply to single requests.
bool RequestMeetsSlos(const std::vector<Slo>& slos, const v1::RequestRecord& r);

// The same test for millions of requests: the tightest bound of each latency-type metric, found
// once, then a few comparisons per request.
struct RequestSloBounds {
  double ttfa_ms = std::numeric_limits<double>::infinity();
  double latency_ms = std::numeric_limits<double>::infinity();
  double rtf = std::numeric_limits<double>::infinity();
  bool has_rtf = false;  // any rtf_* objective: requests without audio fail it
};
RequestSloBounds RequestBoundsOf(const std::vector<Slo>& slos);
inline bool RequestMeetsSloBounds(const RequestSloBounds& b, double latency_ms, double ttfa_ms,
                                  double audio_s) {
  if (ttfa_ms > b.ttfa_ms || latency_ms > b.latency_ms) return false;
  return !b.has_rtf || !(audio_s <= 0 || latency_ms / 1000 / audio_s > b.rtf);
}

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_SLO_H_
